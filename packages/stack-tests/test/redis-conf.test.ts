import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { readRepoFile, repoPath, runRedis, type RedisProcess } from '../src/index.js';

const BIN = process.env.REDIS_SERVER_BIN ?? 'redis-server';
const PASSWORD = 'p4ss wörd:/@%'; // URL- and shell-hostile on purpose

async function config(client: Redis, name: string): Promise<string> {
  const reply = (await client.call('CONFIG', 'GET', name)) as string[];
  return reply[1] ?? '';
}

/** What the cache library, the state store and the scripts send, with arguments that succeed. */
const ALLOWED: string[][] = [
  ['HELLO', '3'],
  ['CLIENT', 'SETNAME', 'stack-tests'],
  ['SELECT', '2'],
  ['PING'],
  ['SET', 'retrieval-proxy:c:k', 'v', 'PX', '60000'],
  ['GET', 'retrieval-proxy:c:k'],
  ['MGET', 'retrieval-proxy:c:k', 'retrieval-proxy:c:other'],
  ['GETEX', 'retrieval-proxy:c:k', 'PX', '60000'],
  ['PEXPIRE', 'retrieval-proxy:c:k', '60000'],
  ['PTTL', 'retrieval-proxy:c:k'],
  ['EXISTS', 'retrieval-proxy:c:k'],
  ['SADD', 'retrieval-proxy:__tags:t', 'retrieval-proxy:c:k'],
  ['SSCAN', 'retrieval-proxy:__tags:t', '0'],
  ['SCAN', '0', 'MATCH', 'retrieval-proxy:*', 'COUNT', '100'],
  ['UNLINK', 'retrieval-proxy:c:k'],
  ['HINCRBY', 'retrieval-proxy:__stats', 'hits', '1'],
  ['HGETALL', 'retrieval-proxy:__stats'],
  ['INCR', 'state:svc:version'],
  ['RPUSH', 'state:svc:list', 'a'],
  ['LRANGE', 'state:svc:list', '0', '-1'],
  ['ZADD', 'state:svc:z', '1', 'a'],
  ['EVAL', 'return 1', '0'],
  ['SCRIPT', 'LOAD', 'return 1'],
  ['EVALSHA', 'e0e1f9fabfc9d4800c877a703b823ac0578ff8db', '0'],
  ['MULTI'],
  ['EXEC'],
  ['INFO', 'persistence'],
  ['TIME'],
  ['DBSIZE'],
  ['PUBLISH', 'retrieval-proxy:__l1', 'x'],
];

/** What nobody logging in as the app user may do. */
const DENIED: string[][] = [
  ['FLUSHALL'],
  ['FLUSHDB'],
  ['KEYS', '*'],
  ['CONFIG', 'SET', 'appendonly', 'no'],
  ['SHUTDOWN', 'NOSAVE'],
  ['DEBUG', 'SLEEP', '0'],
  ['ACL', 'LIST'],
  ['MONITOR'],
  ['SWAPDB', '0', '1'],
  ['SCRIPT', 'FLUSH'],
  ['BGSAVE'],
  ['REPLICAOF', '127.0.0.1', '1'],
  // CONFIG GET would read requirepass and masterauth in clear; the kit's durability check falls back to INFO.
  ['CONFIG', 'GET', 'requirepass'],
  // Keys outside the services' prefixes.
  ['SET', 'someone-else:k', 'v'],
];

describe('infra/redis/redis.dev.conf (the Redis npm start runs)', () => {
  let redis: RedisProcess;
  let client: Redis;
  beforeAll(async () => {
    redis = await runRedis(BIN, [repoPath('infra', 'redis', 'redis.dev.conf')]);
    client = redis.client();
    await client.connect();
  });
  afterAll(async () => redis?.stop());

  it('keeps state safe: never evicts, AOF fsynced every second', async () => {
    expect(await config(client, 'maxmemory-policy')).toBe('noeviction');
    expect(await config(client, 'appendonly')).toBe('yes');
    expect(await config(client, 'appendfsync')).toBe('everysec');
    expect(await config(client, 'bind')).toContain('127.0.0.1');
  });

  it('has FLUSHALL, FLUSHDB and KEYS switched off, so code that uses them fails on a laptop first', async () => {
    for (const cmd of ['FLUSHALL', 'FLUSHDB', 'KEYS']) {
      await expect(client.call(cmd, ...(cmd === 'KEYS' ? ['*'] : [])), cmd).rejects.toThrow(/unknown command/i);
    }
    await client.set('stack-tests:k', 'v');
    expect(await client.get('stack-tests:k')).toBe('v');
  });
});

describe.each([
  ['redis.cache.conf', { 'maxmemory-policy': 'allkeys-lru', maxmemory: String(256 * 1024 * 1024), appendonly: 'no', save: '' }],
  ['redis.state.conf', { 'maxmemory-policy': 'noeviction', appendonly: 'yes', appendfsync: 'everysec' }],
] as const)('infra/redis/%s through start-redis.sh (the compose entrypoint)', (conf, expected) => {
  let redis: RedisProcess;
  let aclFile: string;
  let template: string;
  beforeAll(async () => {
    // The conf names /tmp/redis-users.acl; this run writes it into its own dir instead.
    aclFile = join(tmpdir(), `stack-tests-acl-${process.pid}-${conf}`);
    // The app user has no CONFIG; the test adds a read-only inspector to the template to check settings.
    template = join(tmpdir(), `stack-tests-acl-template-${process.pid}-${conf}`);
    writeFileSync(template, `${readRepoFile('infra', 'redis', 'users.acl.example').trimEnd()}\nuser inspector on >inspector-pw -@all +hello +auth +ping +config|get\n`);
    redis = await runRedis(
      'sh',
      [repoPath('infra', 'redis', 'start-redis.sh'), repoPath('infra', 'redis', conf)],
      { PATH: process.env.PATH, REDIS_PASSWORD: PASSWORD, REDIS_ACL_FILE: aclFile, REDIS_ACL_TEMPLATE: template },
      { username: 'app', password: PASSWORD },
    );
  });
  afterAll(async () => {
    await redis?.stop();
    rmSync(aclFile, { force: true });
    rmSync(template, { force: true });
  });

  it('starts with the settings its role needs', async () => {
    const client = redis.client({ username: 'inspector', password: 'inspector-pw' });
    await client.connect();
    for (const [name, value] of Object.entries(expected)) expect(await config(client, name), name).toBe(value);
  });

  it('keeps the password out of the ACL file (SHA-256 only, file mode 0600)', () => {
    const acl = readFileSync(aclFile, 'utf8');
    expect(acl).not.toContain(PASSWORD);
    expect(acl).toMatch(/^user default off /m);
    expect(acl).toMatch(/^user app on #[0-9a-f]{64} /m);
    expect(statSync(aclFile).mode & 0o077).toBe(0);
  });

  it('answers nothing without a login, and refuses a wrong password', async () => {
    const anonymous = redis.client({ username: undefined, password: undefined });
    await anonymous.connect().catch(() => undefined);
    await expect(anonymous.call('GET', 'x')).rejects.toThrow();
    const wrong = redis.client({ password: 'not-it' });
    const seen: string[] = [];
    wrong.on('error', (err: Error) => seen.push(err.message));
    await wrong.connect().catch((err: Error) => seen.push(err.message));
    expect(seen.join(' | ')).toMatch(/WRONGPASS/);
  });

  it('lets the app user run every command the cache library and the state store use', async () => {
    const client = redis.client();
    await client.connect();
    for (const cmd of ALLOWED) {
      await expect(client.call(cmd[0] as string, ...cmd.slice(1)).then(() => 'ok', (e: Error) => e.message), cmd.join(' ')).resolves.toBe('ok');
    }
  });

  it('denies the app user FLUSHALL, FLUSHDB, KEYS, CONFIG SET, SHUTDOWN, DEBUG and the other dangerous commands', async () => {
    const client = redis.client();
    await client.connect();
    for (const cmd of DENIED) {
      await expect(client.call(cmd[0] as string, ...cmd.slice(1)), cmd.join(' ')).rejects.toThrow(/NOPERM|DEBUG command not allowed/);
    }
    expect(await client.ping()).toBe('PONG');
  });
});

describe('infra/redis/redis.state.conf across a restart (compose: docker restart redis-state)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'stack-tests-state-restart-'));
  const env = { PATH: process.env.PATH, REDIS_PASSWORD: PASSWORD, REDIS_ACL_FILE: join(dir, 'users.acl') };
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('replays the app user\'s MULTI/EXEC writes from the AOF instead of dropping them', async () => {
    const start = (port?: number) =>
      runRedis('sh', [repoPath('infra', 'redis', 'start-redis.sh'), repoPath('infra', 'redis', 'redis.state.conf')], env, { username: 'app', password: PASSWORD }, { dir, ...(port ? { port } : {}) });
    const first = await start();
    const before = first.client();
    await before.connect();
    await before.multi().set('state:svc:agent', 'in a transaction').rpush('state:svc:messages', 'm1', 'm2').exec();
    await before.set('state:svc:plain', 'outside one');
    await first.stop('SIGTERM');

    const again = await start(first.port);
    try {
      const after = again.client();
      await after.connect();
      expect(await after.mget('state:svc:agent', 'state:svc:plain')).toEqual(['in a transaction', 'outside one']);
      expect(await after.lrange('state:svc:messages', 0, -1)).toEqual(['m1', 'm2']);
      expect(again.output()).not.toMatch(/AOF-loading-client/);
    } finally {
      await again.stop();
    }
  });
});

describe('infra/redis/users.acl.example', () => {
  it('turns the default user off and leaves only a placeholder password', () => {
    const acl = readRepoFile('infra', 'redis', 'users.acl.example');
    expect(acl).toMatch(/^user default off( |$)/m);
    expect(acl).toMatch(/^user app on >CHANGE_ME_APP_PASSWORD /m);
    expect(acl).toMatch(/-@dangerous/);
  });

  it("gives the default user (off) the app user's rules, so the AOF replays the app's transactions", () => {
    const acl = readRepoFile('infra', 'redis', 'users.acl.example');
    const rules = (name: string) => new RegExp(`^user ${name} (?:off|on >\\S+) (.*)$`, 'm').exec(acl)?.[1];
    expect(rules('app')).toBeTruthy();
    expect(rules('default')).toBe(rules('app'));
  });
});
