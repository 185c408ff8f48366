import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { runRedis, type RedisProcess } from '@aicache/stack-tests';
import { REPO } from './repo.js';

const exec = promisify(execFile);
const APP_PW = 'app-Pw-6e1f0c';
const OPERATOR_PW = 'operator-Pw-93b2aa';
const work = mkdtempSync(join(tmpdir(), 'ops-backup-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The state Redis as compose runs it: infra/redis/start-redis.sh with redis.state.conf (AOF, noeviction) and the ACL template. */
function startStateRedis(dir: string, operatorPassword: string | undefined, port?: number): Promise<RedisProcess> {
  return runRedis(
    'sh',
    [`${REPO}infra/redis/start-redis.sh`, `${REPO}infra/redis/redis.state.conf`],
    {
      PATH: process.env.PATH,
      REDIS_PASSWORD: APP_PW,
      REDIS_ACL_FILE: join(dir, '..', `${dir.split('/').pop()}.acl`),
      ...(operatorPassword ? { REDIS_OPERATOR_PASSWORD: operatorPassword } : {}),
    },
    { username: 'app', password: APP_PW },
    { dir, ...(port ? { port } : {}) },
  );
}

interface Run {
  code: number;
  out: string;
}
async function script(name: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  try {
    const { stdout, stderr } = await exec('bash', [`${REPO}infra/scripts/${name}`, ...args], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      timeout: 60_000,
    });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/** Every record the app user wrote and Redis acknowledged, by DB: strings, hashes, lists, and a MULTI/EXEC. */
async function writeState(client: Redis, db: number, n: number, tag: string): Promise<Map<string, string>> {
  await client.select(db);
  const acked = new Map<string, string>();
  const pipe = client.pipeline();
  for (let i = 0; i < n; i++) pipe.set(`state:ai-agents:${tag}:agent:${i}`, JSON.stringify({ i, tag, name: `agent ${i}` }));
  for (const [err] of (await pipe.exec()) ?? []) expect(err).toBeNull();
  for (let i = 0; i < n; i++) acked.set(`state:ai-agents:${tag}:agent:${i}`, JSON.stringify({ i, tag, name: `agent ${i}` }));
  const res = await client.multi().hset(`state:retrieval-proxy:${tag}:doc`, { title: 'T', text: 'body' }).rpush(`state:ai-agents:${tag}:messages`, 'm1', 'm2', 'm3').exec();
  expect(res?.every(([err]) => err === null)).toBe(true);
  return acked;
}

describe('backup and restore of the state Redis (infra/scripts/redis-backup.sh, redis-restore.sh)', () => {
  let original: RedisProcess;
  const originalDir = join(work, 'original');
  const out = join(work, 'backups');
  let acked0: Map<string, string>;
  let acked3: Map<string, string>;
  let backupFile: string;

  beforeAll(async () => {
    original = await startStateRedis(originalDir, OPERATOR_PW);
  });
  afterAll(async () => {
    await original?.stop();
  });

  it('backs up with the operator user: BGSAVE awaited, the RDB copied out with a UTC timestamp and its sha256', async () => {
    const app = original.client();
    await app.connect();
    acked0 = await writeState(app, 0, 2000, 'before');
    acked3 = await writeState(app, 3, 500, 'before');
    // REDIS_STATE_URL carries the operator's password in the environment, not on a command line.
    const run = await script('redis-backup.sh', ['--out', out], { REDIS_STATE_URL: `redis://operator:${OPERATOR_PW}@127.0.0.1:${original.port}` });
    expect(run.out).toMatch(/^backup: /m);
    expect(run.code).toBe(0);
    expect(run.out).not.toContain(OPERATOR_PW);
    const files = readdirSync(out);
    const rdb = files.find((f) => /^redis-state-\d{8}T\d{6}Z\.rdb$/.test(f));
    expect(rdb).toBeDefined();
    expect(files).toContain(`${rdb}.sha256`);
    backupFile = join(out, rdb as string);
    expect(readFileSync(`${backupFile}.sha256`, 'utf8')).toMatch(new RegExp(`^[0-9a-f]{64}  ${rdb}\n$`));

    // Written after the backup: must not come back.
    await app.select(0);
    await app.set('state:ai-agents:after:agent:0', 'later');
  });

  it('after losing the server and its data dir, restores into a fresh server with every acknowledged record', async () => {
    expect(backupFile).toBeDefined();
    const port = original.port;
    await original.stop('SIGKILL');
    rmSync(originalDir, { recursive: true, force: true });

    const fresh = join(work, 'fresh');
    const run = await script('redis-restore.sh', ['--file', backupFile, '--dir', fresh]);
    expect(run.out).toContain('checksum ok');
    expect(run.code).toBe(0);
    expect(existsSync(join(fresh, 'appendonlydir'))).toBe(true);

    // The production conf (appendonly yes) loads the rebuilt AOF.
    const restored = await startStateRedis(fresh, OPERATOR_PW, port);
    try {
      const app = restored.client();
      await app.connect();
      for (const [db, acked] of [[0, acked0], [3, acked3]] as const) {
        await app.select(db);
        const keys = [...acked.keys()];
        expect(await app.mget(...keys)).toEqual(keys.map((k) => acked.get(k)));
        expect(await app.hgetall('state:retrieval-proxy:before:doc')).toEqual({ title: 'T', text: 'body' });
        expect(await app.lrange('state:ai-agents:before:messages', 0, -1)).toEqual(['m1', 'm2', 'm3']);
      }
      await app.select(0);
      expect(await app.exists('state:ai-agents:after:agent:0')).toBe(0);

      // A server that runs and holds data is refused without --force; so is a data dir that holds data.
      const running = await script('redis-restore.sh', ['--file', backupFile, '--dir', join(work, 'other'), '--url', `redis://operator:${OPERATOR_PW}@127.0.0.1:${port}`]);
      expect(running.code).not.toBe(0);
      expect(running.out).toMatch(/is running and holds data/);
      expect(running.out).not.toContain(OPERATOR_PW);
      expect(existsSync(join(work, 'other', 'dump.rdb'))).toBe(false);
    } finally {
      await restored.stop('SIGTERM');
    }
    const again = await script('redis-restore.sh', ['--file', backupFile, '--dir', fresh]);
    expect(again.code).not.toBe(0);
    expect(again.out).toMatch(/already holds dump\.rdb appendonlydir: pass --force/);
  });

  it('refuses a backup whose checksum does not match, or that has none', async () => {
    expect(backupFile).toBeDefined();
    const bytes = readFileSync(backupFile);
    const mid = Math.floor(bytes.length / 2);
    bytes[mid] = (bytes[mid] as number) ^ 0xff;
    const damaged = join(work, 'damaged.rdb');
    writeFileSync(damaged, bytes);
    writeFileSync(`${damaged}.sha256`, readFileSync(`${backupFile}.sha256`, 'utf8').replace(/ .*/, '  damaged.rdb\n'));
    const run = await script('redis-restore.sh', ['--file', damaged, '--dir', join(work, 'never')]);
    expect(run.code).not.toBe(0);
    expect(run.out).toMatch(/checksum mismatch/);
    expect(existsSync(join(work, 'never', 'dump.rdb'))).toBe(false);

    rmSync(`${damaged}.sha256`);
    const unsigned = await script('redis-restore.sh', ['--file', damaged, '--dir', join(work, 'never')]);
    expect(unsigned.code).not.toBe(0);
    expect(unsigned.out).toMatch(/no checksum beside the backup/);
  });
});

describe('the operator ACL user (infra/redis/users.acl.example through start-redis.sh)', () => {
  let server: RedisProcess;
  let op: Redis;
  beforeAll(async () => {
    server = await startStateRedis(join(work, 'acl'), OPERATOR_PW);
    const app = server.client();
    await app.connect();
    await app.set('state:ai-agents:k', 'v');
    op = server.client({ username: 'operator', password: OPERATOR_PW });
    await op.connect();
  });
  afterAll(async () => {
    await server?.stop();
  });

  const ALLOWED: string[][] = [
    ['PING'],
    ['INFO'],
    ['INFO', 'memory'],
    ['SLOWLOG', 'GET', '10'],
    ['SLOWLOG', 'LEN'],
    ['CONFIG', 'GET', 'maxmemory-policy'],
    ['BGSAVE'],
    ['LASTSAVE'],
    ['CLIENT', 'LIST'],
    ['LATENCY', 'LATEST'],
    ['LATENCY', 'DOCTOR'],
    ['MEMORY', 'USAGE', 'state:ai-agents:k'],
    ['MEMORY', 'STATS'],
    ['DBSIZE'],
    ['SCAN', '0', 'COUNT', '10'],
    ['TYPE', 'state:ai-agents:k'],
  ];
  const DENIED: string[][] = [
    ['FLUSHALL'],
    ['FLUSHDB'],
    ['DEL', 'state:ai-agents:k'],
    ['UNLINK', 'state:ai-agents:k'],
    ['SET', 'state:ai-agents:k', 'x'],
    ['EXPIRE', 'state:ai-agents:k', '1'],
    ['GET', 'state:ai-agents:k'],
    ['KEYS', '*'],
    ['CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lru'],
    ['CONFIG', 'REWRITE'],
    ['SHUTDOWN'],
    ['SAVE'],
    ['DEBUG', 'SLEEP', '0'],
    ['SLOWLOG', 'RESET'],
    ['LATENCY', 'RESET'],
    ['CLIENT', 'KILL', 'ID', '1'],
    ['ACL', 'SETUSER', 'intruder', 'on', '>pw', '+@all'],
    ['EVAL', "return redis.call('del', KEYS[1])", '1', 'state:ai-agents:k'],
    ['REPLICAOF', 'NO', 'ONE'],
    ['SWAPDB', '0', '1'],
    ['MODULE', 'LIST'],
  ];

  it.each(ALLOWED.map((c) => [c.join(' '), c]))('may run %s', async (_name, cmd) => {
    await expect(op.call(cmd[0] as string, ...cmd.slice(1)).then(() => 'ok', (e: Error) => e.message)).resolves.toBe('ok');
  });

  it('may MONITOR', async () => {
    const monitor = server.client({ username: 'operator', password: OPERATOR_PW });
    await monitor.connect();
    await expect(monitor.call('MONITOR')).resolves.toBe('OK');
    monitor.disconnect();
  });

  it.each(DENIED.map((c) => [c.join(' '), c]))('may not run %s', async (_name, cmd) => {
    // DEBUG is also off server-wide (enable-debug-command no), which answers first.
    await expect(op.call(cmd[0] as string, ...cmd.slice(1))).rejects.toThrow(cmd[0] === 'DEBUG' ? /NOPERM|DEBUG command not allowed/ : /NOPERM/);
  });

  it('left every key as it was, and the server up', async () => {
    const app = server.client();
    await app.connect();
    expect(await app.get('state:ai-agents:k')).toBe('v');
    expect(await op.ping()).toBe('PONG');
  });

  it('is off (no login) when REDIS_OPERATOR_PASSWORD is not set, and its password is only a SHA-256 in the ACL file', async () => {
    const aclText = readFileSync(join(work, 'acl.acl'), 'utf8');
    expect(aclText).toMatch(/^user operator on #[0-9a-f]{64} /m);
    expect(aclText).not.toContain(OPERATOR_PW);
    const off = await startStateRedis(join(work, 'acl-off'), undefined);
    try {
      expect(readFileSync(join(work, 'acl-off.acl'), 'utf8')).toMatch(/^user operator off resetpass /m);
      const attempt = off.client({ username: 'operator', password: 'CHANGE_ME_OPERATOR_PASSWORD' });
      const seen: string[] = [];
      attempt.on('error', (e: Error) => seen.push(e.message));
      await attempt.connect().catch((e: Error) => seen.push(e.message));
      expect(seen.join(' | ')).toMatch(/WRONGPASS/);
    } finally {
      await off.stop();
    }
  });
});
