import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRedisServer, type RedisServer } from '@aicache/test-redis';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVICES, cleanEnv, hasCommand, httpServer, repoPath, run, type FakeService } from '../src/index.js';

const HEALTH = repoPath('infra', 'scripts', 'health-check.sh');
const INTEGRATION = repoPath('infra', 'scripts', 'test-redis-integration.sh');
const TOKEN = 'test-admin-token-7f3a';
const PASSWORD = 'sëcret pass:/@';

describe('shell scripts', () => {
  it.each([
    ['bash', 'infra/scripts/health-check.sh'],
    ['bash', 'infra/scripts/test-redis-integration.sh'],
    ['bash', 'infra/scripts/lib.sh'],
    ['bash', '.ci/run'],
    ['sh', 'infra/redis/start-redis.sh'],
    ['bash', 'infra/docker/build-base-images.sh'],
  ])('%s -n %s: the syntax is valid', async (shell, file) => {
    const res = await run(shell, ['-n', repoPath(file)], cleanEnv({}));
    expect(res.output).toBe('');
    expect(res.code).toBe(0);
  });

  it.skipIf(!hasCommand('shellcheck'))('shellcheck finds nothing (skipped where shellcheck is not installed)', async () => {
    const files = ['infra/scripts/health-check.sh', 'infra/scripts/test-redis-integration.sh', 'infra/scripts/lib.sh', 'infra/scripts/redis-backup.sh', 'infra/scripts/redis-restore.sh', '.ci/run', 'infra/redis/start-redis.sh', 'infra/docker/build-base-images.sh'];
    const res = await run('shellcheck', ['-x', ...files], cleanEnv({}));
    expect(res.output).toBe('');
    expect(res.code).toBe(0);
  });
});

interface FakeOptions {
  ready?: number;
  db?: number;
  token?: string;
}

/** A stand-in for a service: /health, /ready, cache stats and the guarded cache probe. */
function fakeHandler(name: string, db: number, opts: FakeOptions) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'GET' && req.url === '/health') return send(200, { status: 'ok' });
    if (req.method === 'GET' && req.url === '/ready') return send(opts.ready ?? 200, { status: opts.ready === 503 ? 'not ready' : 'ready' });
    if (req.method === 'GET' && req.url === '/api/v1/cache/stats') return send(200, { service: name, db: opts.db ?? db, connected: true });
    if (req.method === 'POST' && req.url === '/api/v1/cache/test') {
      if (req.headers.authorization !== `Bearer ${opts.token ?? TOKEN}`) return send(401, { statusCode: 401, code: 'UNAUTHORIZED' });
      return send(200, { status: 'ok', cached_value: { probe: 1 }, ttl: 60 });
    }
    return send(404, { statusCode: 404 });
  };
}

describe('infra/scripts against stand-in services and private Redis servers', () => {
  let durable: RedisServer; // AOF on, noeviction: what a state Redis must be
  let volatile: RedisServer; // no AOF, allkeys-lru: a cache Redis
  let secured: RedisServer; // requirepass
  const fakes: FakeService[] = [];

  const fakeEnv = (overrides: Partial<Record<string, FakeOptions>> = {}) =>
    Promise.all(SERVICES.map((s) => httpServer(fakeHandler(s.name, s.db, overrides[s.name] ?? {})))).then((list) => {
      fakes.push(...list);
      return {
        MULTIMODAL_WORKER_URL: list[0]?.url,
        RETRIEVAL_PROXY_URL: list[1]?.url,
        AI_AGENTS_URL: list[2]?.url,
      };
    });

  beforeAll(async () => {
    [durable, volatile, secured] = await Promise.all([
      startRedisServer({ appendfsync: 'everysec' }),
      startRedisServer({ args: ['--maxmemory', '10mb', '--maxmemory-policy', 'allkeys-lru'] }),
      startRedisServer({ password: PASSWORD }),
    ]);
  });
  afterAll(async () => {
    await Promise.all(fakes.map((f) => f.close()));
    await Promise.all([durable?.stop(), volatile?.stop(), secured?.stop()]);
  });

  it('health-check.sh passes, one line per check, when every service and Redis answer', async () => {
    const urls = await fakeEnv();
    const res = await run('bash', [HEALTH], cleanEnv({ ...urls, REDIS_URL: durable.url }));
    expect(res.code, res.output).toBe(0);
    expect(res.output.match(/^ok /gm)).toHaveLength(7);
    expect(res.output).not.toMatch(/^FAIL/m);
  });

  it('health-check.sh fails and names the service that is not ready and the Redis that does not answer', async () => {
    const urls = await fakeEnv({ 'retrieval-proxy': { ready: 503 } });
    const res = await run('bash', [HEALTH], cleanEnv({ ...urls, REDIS_URL: 'redis://127.0.0.1:1', HEALTH_TIMEOUT_SECONDS: '2' }));
    expect(res.code).toBe(1);
    expect(res.output).toMatch(/^FAIL retrieval-proxy \/ready .*503/m);
    expect(res.output).toMatch(/^ok +retrieval-proxy \/health/m);
    expect(res.output).toMatch(/^FAIL redis \(cache\) PING/m);
  });

  it('health-check.sh logs in with the password from REDIS_URL and never prints it', async () => {
    const urls = await fakeEnv();
    const res = await run('bash', [HEALTH], cleanEnv({ ...urls, REDIS_URL: secured.url }));
    expect(res.code, res.output).toBe(0);
    expect(res.output).toMatch(/^ok +redis \(cache\) PING .*:\*\*\*@127\.0\.0\.1/m);
    expect(res.output).not.toContain(PASSWORD);
    expect(res.output).not.toContain(encodeURIComponent(PASSWORD));

    const wrong = await run('bash', [HEALTH], cleanEnv({ ...urls, REDIS_URL: secured.url.replace(/:[^:@/]+@/, ':nope@') }));
    expect(wrong.code).toBe(1);
    expect(wrong.output).toMatch(/^FAIL redis \(cache\) PING/m);
  });

  it('test-redis-integration.sh passes against a well-set-up stack and leaves no probe key behind', async () => {
    const urls = await fakeEnv();
    const res = await run('bash', [INTEGRATION], cleanEnv({ ...urls, REDIS_URL: volatile.url, REDIS_STATE_URL: durable.url, CACHE_ADMIN_TOKEN: TOKEN }));
    expect(res.code, res.output).toBe(0);
    expect(res.output).toMatch(/^ok +isolation: multimodal-worker db 0/m);
    expect(res.output).toMatch(/^ok +state redis: AOF/m);
    expect(res.output).toMatch(/^ok +ai-agents POST \/api\/v1\/cache\/test +status=ok/m);
    expect(res.output).not.toContain(TOKEN);
    const client = new Redis(volatile.url, { lazyConnect: true });
    await client.connect();
    for (const db of [0, 1, 2]) {
      await client.select(db);
      expect(await client.dbsize(), `db ${db}`).toBe(0);
    }
    client.disconnect();
  });

  it('test-redis-integration.sh reads the admin token from CACHE_ADMIN_TOKEN_FILE (what npm start writes)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stack-tests-token-'));
    writeFileSync(join(dir, 'admin-token'), `${TOKEN}\n`, { mode: 0o600 });
    const urls = await fakeEnv();
    const res = await run('bash', [INTEGRATION], cleanEnv({ ...urls, REDIS_URL: durable.url, CACHE_ADMIN_TOKEN_FILE: join(dir, 'admin-token') }));
    rmSync(dir, { recursive: true, force: true });
    expect(res.code, res.output).toBe(0);
  });

  it('test-redis-integration.sh fails when the state Redis has no AOF and evicts', async () => {
    const urls = await fakeEnv();
    const res = await run('bash', [INTEGRATION], cleanEnv({ ...urls, REDIS_URL: volatile.url, CACHE_ADMIN_TOKEN: TOKEN }));
    expect(res.code).toBe(1);
    expect(res.output).toMatch(/^FAIL state redis: AOF .*aof_enabled:0/m);
    expect(res.output).toMatch(/^FAIL state redis: eviction .*allkeys-lru/m);
  });

  it('test-redis-integration.sh fails when two services share a DB, a service reports another DB, or the token is wrong', async () => {
    const urls = await fakeEnv({ 'retrieval-proxy': { db: 5 } });
    const res = await run(
      'bash',
      [INTEGRATION],
      cleanEnv({ ...urls, REDIS_URL: durable.url, REDIS_DB_AI_AGENTS: '0', CACHE_ADMIN_TOKEN: 'wrong-token' }),
    );
    expect(res.code).toBe(1);
    expect(res.output).toMatch(/^FAIL isolation: multimodal-worker db 0 .*shared with ai-agents/m);
    expect(res.output).toMatch(/^FAIL retrieval-proxy GET \/api\/v1\/cache\/stats .*db='5'/m);
    expect(res.output).toMatch(/^FAIL multimodal-worker POST \/api\/v1\/cache\/test +HTTP 401/m);
    expect(res.output).toMatch(/^ok +multimodal-worker POST \/api\/v1\/cache\/test, no token +401/m);
  });
});
