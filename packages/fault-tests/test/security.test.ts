/**
 * Security of the running services against real redis-servers made in the test: AUTH (and a wrong password),
 * ACL users with the least commands the cache and the services need, TLS with a CA made by openssl, the admin
 * rate limit, body size limits on every POST/PUT route of the OpenAPI docs, secrets kept out of logs and
 * answers, and no route that fetches a URL or opens a path a caller supplies.
 */
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { Redis } from 'ioredis';
import { Cache } from '@aicache/cache';
import { freePort, waitFor, type RedisServer } from '@aicache/test-redis';
import { makeCerts, printFigures, recordFigures } from '../src/index.js';
import {
  ADMIN_TOKEN,
  agentsCfg,
  buildAgents,
  buildProxy,
  buildWorker,
  Http,
  listen,
  proxyCfg,
  REPO,
  Servers,
  ServiceProcess,
  until,
  workerCfg,
  type Env,
  type ServiceName,
} from './helpers.js';

const servers = new Servers();
const figures: Record<string, unknown> = {};
afterAll(async () => {
  await servers.stopAll();
  if (Object.keys(figures).length) recordFigures('security', figures);
});

const PASSWORD = 'pw-S3cr3t-7d1e0b';
const WRONG_PASSWORD = 'wrong-S3cr3t-91ab4c';
const ADMIN = { authorization: `Bearer ${ADMIN_TOKEN}` };
/** A user's password, and the API keys and session tokens made in a run: none may show in a log line or an answer but the one that made it. */
const USER_PASSWORD = 'user-Pw-secret-7c41a9e2';
const credentials: string[] = [];

function expectNoSecrets(where: string, text: string, secrets: string[]): void {
  for (const s of secrets) {
    for (const form of new Set([s, encodeURIComponent(s)])) {
      const i = text.indexOf(form);
      expect(i, `${where} contains a secret: ...${text.slice(Math.max(0, i - 120), i + 40)}...`).toBe(-1);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
describe('Redis AUTH: the three services as processes (NODE_ENV=production, JSON logs)', () => {
  const procs: ServiceProcess[] = [];
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
  });

  async function stack(env: (name: ServiceName) => Env): Promise<Record<ServiceName, ServiceProcess>> {
    const [wp, pp, ap] = await Promise.all([freePort(), freePort(), freePort()]);
    const common: Env = { NODE_ENV: 'production', LOG_LEVEL: 'info', CACHE_ADMIN_TOKEN: ADMIN_TOKEN, PEER_TIMEOUT_MS: '3000' };
    const worker = new ServiceProcess('multimodal-worker', wp, { ...common, ...env('multimodal-worker') });
    const proxy = new ServiceProcess('retrieval-proxy', pp, { ...common, MULTIMODAL_WORKER_URL: worker.url, ...env('retrieval-proxy') });
    const agents = new ServiceProcess('ai-agents', ap, { ...common, RETRIEVAL_PROXY_URL: proxy.url, ...env('ai-agents') });
    procs.push(worker, proxy, agents);
    await Promise.all([worker.start(), proxy.start(), agents.start()]);
    return { 'multimodal-worker': worker, 'retrieval-proxy': proxy, 'ai-agents': agents };
  }

  /** Calls every kind of answer a user or operator sees; answers all the bodies. */
  async function exercise(s: Record<ServiceName, ServiceProcess>, expectCache: boolean): Promise<string[]> {
    const bodies: string[] = [];
    const keep = <T extends { text: string; status: number }>(r: T): T => (bodies.push(`${r.status} ${r.text}`), r);
    const w = new Http(s['multimodal-worker'].url);
    const p = new Http(s['retrieval-proxy'].url);
    const a = new Http(s['ai-agents'].url);
    try {
      // Authentication is on (production): a user with a password, an API key and a session, made by the admin.
      const user = keep(await a.call('POST', '/api/v1/auth/users', { username: `sec-${randomUUID().slice(0, 8)}`, password: USER_PASSWORD, tenant: 'sec' }, ADMIN));
      expect(user.status, user.text).toBe(201);
      const username = user.json<{ username: string; id: string }>().username;
      const created = keep(await a.call('POST', '/api/v1/auth/keys', { name: 'sec', scopes: ['write'], userId: user.json<{ id: string }>().id }, ADMIN));
      expect(created.status, created.text).toBe(201);
      const apiKey = created.json<{ key: string }>().key;
      const login = await a.call('POST', '/api/v1/auth/login', { username, password: USER_PASSWORD });
      expect(login.status, login.text).toBe(200);
      const session = login.json<{ token: string }>().token;
      credentials.push(apiKey, session);
      for (const h of [w, p]) h.defaultHeaders = { authorization: `Bearer ${apiKey}` };
      a.defaultHeaders = { authorization: `Bearer ${session}` };
      expect((await a.call('POST', '/api/v1/auth/login', { username, password: `${USER_PASSWORD}-wrong` })).status).toBe(401);

      const input = `auth test ${randomUUID()}`;
      const e1 = keep(await w.call('POST', '/api/v1/embeddings', { input }));
      const e2 = keep(await w.call('POST', '/api/v1/embeddings', { input }));
      expect(e1.status, e1.text).toBe(200);
      expect(e2.status, e2.text).toBe(200);
      expect(e2.headers['x-cache']).toBe(expectCache ? 'hit' : 'miss');

      const docId = `auth-${randomUUID().slice(0, 8)}`;
      const ing = keep(await p.call('POST', '/api/v1/documents', { id: docId, title: 'AUTH', text: 'Redis AUTH protects the server with a password. ACL users limit the commands.' }));
      expect(ing.status, ing.text).toBe(201);
      const query = { query: `redis password ${randomUUID()}` };
      const s1 = keep(await p.call('POST', '/api/v1/search', query));
      const s2 = keep(await p.call('POST', '/api/v1/search', query));
      expect(s1.status, s1.text).toBe(200);
      expect(s2.status, s2.text).toBe(200);
      if (expectCache) expect(s2.headers['x-cache']).toBe('hit');

      const agent = keep(await a.call('POST', '/api/v1/agents', { name: 'auth' }));
      expect(agent.status, agent.text).toBe(201);
      const conv = keep(await a.call('POST', `/api/v1/agents/${agent.json<{ id: string }>().id}/conversations`, {}));
      const msg = keep(await a.call('POST', `/api/v1/conversations/${conv.json<{ id: string }>().id}/messages`, { content: 'what protects redis?' }));
      expect(msg.status, msg.text).toBe(201);

      for (const h of [w, p, a]) {
        const probe = keep(await h.call('POST', '/api/v1/cache/test', undefined, ADMIN));
        expect(probe.status, probe.text).toBe(expectCache ? 200 : 503);
        keep(await h.call('GET', '/api/v1/cache/stats', undefined, ADMIN));
        keep(await h.call('GET', '/metrics'));
        keep(await h.call('POST', '/api/v1/cache/invalidate', { category: 'nope' }, ADMIN));
        keep(await h.call('POST', '/api/v1/cache/invalidate', { category: 'nope' }, { authorization: `Bearer ${PASSWORD}` }));
        keep(await h.call('GET', '/no/such/route'));
        const ready = await until(async () => {
          const r = keep(await h.call('GET', '/ready'));
          return r.json<{ status: string }>().status === (expectCache ? 'ready' : 'degraded');
        }, 15_000, 200);
        expect(ready, `${h.origin} /ready: ${bodies.at(-1)}`).toBe(true);
      }
      return bodies;
    } finally {
      await Promise.all([w.close(), p.close(), a.close()]);
    }
  }

  it('right password: every service uses the cache (hits, /ready ready), and no log line or answer holds the password or the admin token', async () => {
    const redis = await servers.start({ password: PASSWORD });
    const url = `redis://:${encodeURIComponent(PASSWORD)}@127.0.0.1:${redis.port}`;
    const s = await stack(() => ({ REDIS_URL: url }));
    const bodies = await exercise(s, true);
    await Promise.all(Object.values(s).map((p) => p.stop()));
    expectNoSecrets('an HTTP answer', bodies.filter((b) => !/"key":"aik_|"token":"ses_/.test(b)).join('\n'), [PASSWORD, ADMIN_TOKEN, USER_PASSWORD, ...credentials]);
    for (const p of Object.values(s)) expectNoSecrets(`${p.name} log`, p.output, [PASSWORD, ADMIN_TOKEN, USER_PASSWORD, ...credentials]);
  });

  it('wrong cache password: services answer from origin, /ready says degraded, the password appears in no log or answer', async () => {
    const redis = await servers.start({ password: PASSWORD });
    const wrong = `redis://:${encodeURIComponent(WRONG_PASSWORD)}@127.0.0.1:${redis.port}`;
    const state = `redis://:${encodeURIComponent(PASSWORD)}@127.0.0.1:${redis.port}`;
    const s = await stack(() => ({ REDIS_URL: wrong, REDIS_STATE_URL: state }));
    const bodies = await exercise(s, false);
    await Promise.all(Object.values(s).map((p) => p.stop()));
    expectNoSecrets('an HTTP answer', bodies.filter((b) => !/"key":"aik_|"token":"ses_/.test(b)).join('\n'), [WRONG_PASSWORD, PASSWORD, ADMIN_TOKEN, USER_PASSWORD, ...credentials]);
    for (const p of Object.values(s)) {
      expectNoSecrets(`${p.name} log`, p.output, [WRONG_PASSWORD, PASSWORD, ADMIN_TOKEN, USER_PASSWORD, ...credentials]);
      // The operator is told why the cache is not used.
      expect(p.output, `${p.name} log does not say the cache could not authenticate`).toMatch(/WRONGPASS|NOAUTH|invalid username-password/i);
    }
  });

  it('configuration errors naming a Redis URL never echo its password', async () => {
    const messages: string[] = [];
    for (const REDIS_URL of [`http://:${PASSWORD}@127.0.0.1:6390`, `redis://:${PASSWORD}@127.0.0.1:99999`, `redis://:${PASSWORD}@[::1`]) {
      try {
        const app = await buildWorker(workerCfg({ REDIS_URL }), { logger: false });
        await app.close();
        messages.push('(accepted)');
      } catch (err) {
        messages.push(String((err as Error).message));
      }
    }
    expect(messages.filter((m) => m === '(accepted)')).toEqual([]);
    expectNoSecrets('a configuration error', messages.join('\n'), [PASSWORD]);
  });
});

// ---------------------------------------------------------------------------------------------------------
/** The least an app user needs: the cache library's commands, then the state commands of ai-agents and retrieval-proxy. */
export const CACHE_COMMANDS = [
  'hello', 'auth', 'ping', 'select', 'quit', 'info', 'time', 'dbsize', 'ttl',
  'get', 'mget', 'getrange', 'pexpire', 'hget', 'hgetall', 'hincrby', 'unlink', 'scan', 'sscan',
  'eval', 'evalsha', // the write/lease scripts, which themselves call:
  'set', 'sadd', 'pttl', 'del',
];
export const STATE_COMMANDS = [
  'client|setname', // ioredis connectionName of the state client
  'multi', 'exec', 'exists', 'hset', 'incr', 'zadd', 'zcard', 'zrange', 'zrem', 'llen', 'lrange', 'ltrim', 'rpush',
];
/** Users, keys, sessions, limits and the audit stream (packages/auth), and the revocation channel every service subscribes to. */
export const AUTH_COMMANDS = ['subscribe', 'publish', 'smembers', 'srem', 'expire', 'pexpireat', 'incrby', 'xadd', 'xrevrange'];
/** BullMQ's queue of retrieval-proxy's background jobs (packages/jobs) on the state Redis: the commands its Lua scripts call. */
export const JOBS_COMMANDS = [
  'eval', 'evalsha', 'script|load', 'bzpopmin', 'client|setname', 'client|getname', // the worker's own calls; its scripts call:
  'del', 'exists', 'get', 'hdel', 'hexists', 'hget', 'hgetall', 'hincrby', 'hlen', 'hmget', 'hmset', 'hset', 'incr',
  'incrby', 'lindex', 'llen', 'lpop', 'lpos', 'lpush', 'lrange', 'lrem', 'lset', 'ltrim', 'persist', 'pexpire',
  'pexpireat', 'pttl', 'rename', 'rpop', 'rpoplpush', 'rpush', 'sadd', 'scard', 'set', 'sismember', 'smembers',
  'srem', 'time', 'type', 'unlink', 'xadd', 'xdel', 'xlen', 'xrange', 'xread', 'xtrim', 'zadd', 'zcard', 'zcount',
  'zlexcount', 'zpopmin', 'zrange', 'zrangebylex', 'zrangebyscore', 'zrem', 'zremrangebyrank', 'zremrangebyscore',
  'zrevrange', 'zrevrangebyscore', 'zscore',
];
const KEY_PATTERNS = ['~multimodal-worker:*', '~retrieval-proxy:*', '~ai-agents:*', '~state:*', '~auth:*', '~jobs:*'];
const APP_PASSWORD = 'app-Pw-4b7f2c';
const MINIMAL_APP_USER = `user app on >${APP_PASSWORD} ${KEY_PATTERNS.join(' ')} resetchannels &auth:* -@all ${[...CACHE_COMMANDS, ...STATE_COMMANDS, ...AUTH_COMMANDS, ...JOBS_COMMANDS].map((c) => `+${c}`).join(' ')}`;
const ADMIN_USER = 'user admin on >admin-Pw-0c1d ~* &* +@all';

/** A server whose ACL turns the default user off, with an admin that reads the ACL LOG. */
async function aclServer(appUser: string): Promise<{ server: RedisServer; admin: Redis; deniedForApp(): Promise<string[]> }> {
  const server = await servers.start({ acl: `user default off\n${ADMIN_USER}\n${appUser}\n`, auth: { username: 'admin', password: 'admin-Pw-0c1d' } });
  const admin = new Redis({ host: server.host, port: server.port, username: 'admin', password: 'admin-Pw-0c1d', maxRetriesPerRequest: 1 });
  await admin.call('ACL', 'LOG', 'RESET');
  return {
    server,
    admin,
    async deniedForApp() {
      const log = (await admin.call('ACL', 'LOG', '128')) as unknown[][];
      return log
        .map((e) => Object.fromEntries(Array.from({ length: e.length / 2 }, (_, i) => [String(e[2 * i]), String(e[2 * i + 1])])))
        .filter((e) => e.username === 'app')
        .map((e) => `${e.reason} ${e.context} ${e.object}`)
        // Denied on purpose (CONFIG GET also reads masterauth/requirepass): the kit's durability check then reads INFO.
        .filter((e) => e !== 'command toplevel config|get');
    },
  };
}

async function cacheLibraryRoundTrip(port: number): Promise<Record<string, unknown>> {
  const cache = new Cache({
    service: 'retrieval-proxy',
    categories: { search_results: { ttl: 60 }, context_bundles: { ttl: 60, sliding: true } },
    connection: { host: '127.0.0.1', port, username: 'app', password: APP_PASSWORD, db: 1 },
    commandTimeoutMs: 2000,
  });
  try {
    await until(() => cache.client.status === 'ready', 5000, 20);
    const a = cache.category('search_results');
    const sl = cache.category('context_bundles');
    const out: Record<string, unknown> = {};
    out.set = await a.set('k', { v: 1 }, { tags: ['doc:1'] });
    out.get = await a.get('k');
    out.has = await a.has('k');
    out.mset = await a.mset<unknown>([{ key: 'm1', value: 'x' }, { key: 'm2', value: new Float32Array([1, 2]) }]);
    out.mget = (await a.mget<unknown>(['m1', 'm2', 'none'])).map((v) => (v instanceof Float32Array ? Array.from(v) : v));
    out.sliding = [await sl.set('s', 1), await sl.get('s'), await sl.mget(['s'])];
    let loads = 0;
    out.getOrSet = [await a.getOrSet('g', async () => ++loads), await a.getOrSet('g', async () => ++loads)];
    out.wrapJson = String(await a.wrapJson('w', async () => ({ a: 1 })));
    out.invalidate = await a.invalidate(['m1']);
    out.pattern = await a.invalidatePattern('m*');
    out.tags = await cache.invalidateTags(['doc:1']);
    out.clearCategory = await sl.clear();
    await a.set('left', 1);
    out.clear = await cache.clear();
    const stats = await cache.stats();
    out.statsConnected = stats.connected;
    out.health = (await cache.health()).status;
    return out;
  } finally {
    await cache.close();
  }
}

const EXPECTED_ROUND_TRIP = {
  set: true,
  get: { v: 1 },
  has: true,
  mset: true,
  mget: ['x', [1, 2], undefined],
  sliding: [true, 1, [1]],
  getOrSet: [1, 1],
  wrapJson: '{"a":1}',
  invalidate: 1,
  pattern: 1,
  tags: 1,
  clearCategory: 1,
  // 'left', and the getOrSet and wrapJson entries.
  clear: 3,
  statsConnected: true,
  health: 'up',
};

/** The three services on one Redis as user app: every route family works and reads its cache. */
async function servicesWork(port: number): Promise<void> {
  const url = `redis://app:${APP_PASSWORD}@127.0.0.1:${port}`;
  const apps: FastifyInstance[] = [];
  try {
    const w = await buildWorker(workerCfg({ REDIS_URL: url }), { logger: false, underPressure: false, adminRateLimit: false });
    apps.push(w);
    const wurl = await listen(w);
    const p = await buildProxy(proxyCfg({ REDIS_URL: url, MULTIMODAL_WORKER_URL: wurl }), { logger: false, underPressure: false, adminRateLimit: false });
    apps.push(p);
    const purl = await listen(p);
    const a = await buildAgents(agentsCfg({ REDIS_URL: url, RETRIEVAL_PROXY_URL: purl }), { logger: false, underPressure: false });
    apps.push(a);
    const ok = async (app: FastifyInstance, req: InjectOptions, status = 200, cache?: string) => {
      const r = await app.inject(req);
      expect(r.statusCode, `${JSON.stringify(req)} -> ${r.body}`).toBe(status);
      if (cache) expect(r.headers['x-cache'], JSON.stringify(req)).toBe(cache);
      return r;
    };
    for (const app of [w, p, a]) {
      await ok(app, { method: 'POST', url: '/api/v1/cache/test', headers: ADMIN });
      const ready = await app.inject('/ready');
      expect(ready.json<{ status: string }>().status, ready.body).toBe('ready');
    }
    await ok(w, { method: 'POST', url: '/api/v1/embeddings', payload: { input: 'acl' } }, 200, 'miss');
    await ok(w, { method: 'POST', url: '/api/v1/embeddings', payload: { input: 'acl' } }, 200, 'hit');
    const text = await ok(w, { method: 'POST', url: '/api/v1/process/text', payload: { text: 'ACL users. '.repeat(40) } });
    await ok(w, { method: 'GET', url: '/api/v1/models' });
    await ok(w, { method: 'DELETE', url: `/api/v1/cache/file/${text.json<{ fileHash: string }>().fileHash}`, headers: ADMIN });
    await ok(p, { method: 'POST', url: '/api/v1/documents', payload: { id: 'acl', title: 'ACL', text: 'An ACL user may run only the commands it is given. '.repeat(10) } }, 201);
    await ok(p, { method: 'POST', url: '/api/v1/search', payload: { query: 'acl commands' } }, 200, 'miss');
    await ok(p, { method: 'POST', url: '/api/v1/search', payload: { query: 'acl commands' } }, 200, 'hit');
    await ok(p, { method: 'POST', url: '/api/v1/context', payload: { query: 'acl commands' } });
    await ok(p, { method: 'GET', url: '/api/v1/documents' });
    await ok(p, { method: 'GET', url: '/api/v1/documents/acl' });
    await ok(p, { method: 'POST', url: '/api/v1/cache/invalidate', headers: ADMIN, payload: { category: 'search_results', pattern: '*' } });
    await ok(p, { method: 'DELETE', url: '/api/v1/cache/clear', headers: ADMIN });
    const agent = (await ok(a, { method: 'POST', url: '/api/v1/agents', payload: { name: 'acl' } }, 201)).json<{ id: string }>().id;
    const conv = (await ok(a, { method: 'POST', url: `/api/v1/agents/${agent}/conversations`, payload: {} }, 201)).json<{ id: string }>().id;
    await ok(a, { method: 'POST', url: `/api/v1/conversations/${conv}/messages`, payload: { content: 'which commands may the app user run?' } }, 201);
    await ok(a, { method: 'GET', url: `/api/v1/conversations/${conv}/messages` });
    await ok(a, { method: 'GET', url: `/api/v1/agents/${agent}/memory` });
    await ok(a, { method: 'DELETE', url: `/api/v1/conversations/${conv}` }, 204);
    await ok(a, { method: 'DELETE', url: `/api/v1/agents/${agent}` }, 204);
    await ok(p, { method: 'DELETE', url: '/api/v1/documents/acl' }, 204);
  } finally {
    for (const app of apps.reverse()) await app.close();
  }
}

describe('Redis ACL: `user default off` and an app user', () => {
  it('the minimal app user: the cache library round trip is exact and ACL LOG shows no denied command', async () => {
    const { server, admin, deniedForApp } = await aclServer(MINIMAL_APP_USER);
    try {
      expect(await cacheLibraryRoundTrip(server.port)).toEqual(EXPECTED_ROUND_TRIP);
      expect(await deniedForApp()).toEqual([]);
    } finally {
      admin.disconnect();
    }
  });

  it('the minimal app user: all three services work (cache hits, state) with REDIS_URL redis://app:pw@..., nothing denied', async () => {
    const { server, admin, deniedForApp } = await aclServer(MINIMAL_APP_USER);
    try {
      await servicesWork(server.port);
      expect(await deniedForApp()).toEqual([]);
      figures.aclMinimalAppUser = MINIMAL_APP_USER.replace(APP_PASSWORD, '<password>');
    } finally {
      admin.disconnect();
    }
  });

  it('the minimal app user cannot flush, list keys, read config secrets, or touch keys outside the services', async () => {
    const { server, admin } = await aclServer(MINIMAL_APP_USER);
    const app = new Redis({ host: server.host, port: server.port, username: 'app', password: APP_PASSWORD, maxRetriesPerRequest: 0 });
    try {
      for (const cmd of [['FLUSHDB'], ['FLUSHALL'], ['KEYS', '*'], ['CONFIG', 'GET', 'masterauth'], ['CONFIG', 'SET', 'maxmemory', '1'], ['SET', 'other:key', '1'], ['SCRIPT', 'FLUSH'], ['SHUTDOWN']]) {
        await expect(app.call(cmd[0]!, ...cmd.slice(1)), cmd.join(' ')).rejects.toThrow(/NOPERM/);
      }
      // The default user is off: a client without credentials cannot log in.
      const anon = new Redis({ host: server.host, port: server.port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      anon.on('error', () => undefined);
      await expect(anon.connect().then(() => anon.ping())).rejects.toThrow();
      anon.disconnect();
    } finally {
      app.disconnect();
      admin.disconnect();
    }
  });

  it('infra/redis/users.acl.example: its app user also runs everything (compared with the minimal list)', async () => {
    const example = readFileSync(join(REPO, 'infra/redis/users.acl.example'), 'utf8');
    const appLine = example.split('\n').find((l) => /^user app /.test(l));
    expect(appLine, 'no `user app` line in users.acl.example').toBeDefined();
    const { server, admin, deniedForApp } = await aclServer(appLine!.replace(/>\S+/, `>${APP_PASSWORD}`));
    const app = new Redis({ host: server.host, port: server.port, username: 'app', password: APP_PASSWORD, maxRetriesPerRequest: 0 });
    try {
      expect(await cacheLibraryRoundTrip(server.port)).toEqual(EXPECTED_ROUND_TRIP);
      await servicesWork(server.port);
      expect(await deniedForApp()).toEqual([]);
      // Reported, not asserted: what the example grants beyond the minimal list.
      const canReadConfigSecrets = await app.call('CONFIG', 'GET', 'masterauth').then(() => true, () => false);
      const canWriteAnyKey = await app.call('SET', 'other:key', '1').then(() => true, () => false);
      const canFlush = await app.call('FLUSHDB').then(() => true, () => false);
      figures.aclExample = { worksForEverything: true, canReadConfigSecrets, canWriteAnyKey, canFlush };
      printFigures('infra/redis/users.acl.example app user vs the minimal list', Object.entries(figures.aclExample as object));
      expect(canFlush).toBe(false);
    } finally {
      app.disconnect();
      admin.disconnect();
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
describe('TLS: rediss:// with a CA made by openssl', () => {
  const certs = makeCerts();

  it('with REDIS_TLS_CA_FILE the worker and the proxy (cache and state over TLS) use Redis: hits, /ready ready', async () => {
    const redis = await servers.start({ tls: { cert: certs.cert, key: certs.key, ca: certs.ca } });
    expect(redis.url.startsWith('rediss://')).toBe(true);
    const env = { REDIS_URL: `rediss://127.0.0.1:${redis.port}`, REDIS_TLS_CA_FILE: certs.ca };
    const w = await buildWorker(workerCfg(env), { logger: false, underPressure: false, adminRateLimit: false });
    const p = await buildProxy(proxyCfg({ ...env, MULTIMODAL_WORKER_URL: await listen(w) }), { logger: false, underPressure: false, adminRateLimit: false });
    try {
      for (const expected of ['miss', 'hit']) {
        const r = await w.inject({ method: 'POST', url: '/api/v1/embeddings', payload: { input: 'over tls' } });
        expect(r.statusCode, r.body).toBe(200);
        expect(r.headers['x-cache']).toBe(expected);
      }
      expect((await p.inject({ method: 'POST', url: '/api/v1/documents', payload: { title: 'TLS', text: 'Redis speaks TLS on its tls-port.' } })).statusCode).toBe(201);
      for (const expected of ['miss', 'hit']) {
        const r = await p.inject({ method: 'POST', url: '/api/v1/search', payload: { query: 'tls port' } });
        expect(r.statusCode, r.body).toBe(200);
        expect(r.headers['x-cache']).toBe(expected);
      }
      for (const app of [w, p]) expect((await app.inject('/ready')).json<{ status: string }>().status).toBe('ready');
    } finally {
      await p.close();
      await w.close();
    }
  });

  it('without the CA the worker boots, answers from origin and says degraded: no crash, no hang', async () => {
    const redis = await servers.start({ tls: { cert: certs.cert, key: certs.key, ca: certs.ca } });
    const started = Date.now();
    const w = await buildWorker(workerCfg({ REDIS_URL: `rediss://127.0.0.1:${redis.port}` }), { logger: false, underPressure: false, adminRateLimit: false });
    const bootMs = Date.now() - started;
    try {
      for (let i = 0; i < 3; i++) {
        const r = await w.inject({ method: 'POST', url: '/api/v1/embeddings', payload: { input: 'over tls without ca' } });
        expect(r.statusCode, r.body).toBe(200);
        expect(r.headers['x-cache']).toBe('miss');
      }
      const ready = await w.inject('/ready');
      expect(ready.statusCode).toBe(200);
      expect(ready.json<{ status: string }>().status).toBe('degraded');
      figures.tlsWithoutCa = { bootMs, ready: ready.json() };
    } finally {
      await w.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
describe('guessing credentials is locked out per address (AUTH_LOGIN_MAX_FAILURES_PER_IP an hour)', () => {
  it.each(['multimodal-worker', 'retrieval-proxy', 'ai-agents'] as const)('%s: guesses 1..59 are 401, the 60th locks the address: 429, then for any credential from it; the rest of the service is not limited', async (name) => {
    const redis = await servers.start();
    const env = { REDIS_URL: redis.url, MULTIMODAL_WORKER_URL: 'http://127.0.0.1:1', RETRIEVAL_PROXY_URL: 'http://127.0.0.1:1', AUTH_LOGIN_MAX_FAILURES_PER_IP: '60' };
    const app: FastifyInstance =
      name === 'multimodal-worker'
        ? await buildWorker(workerCfg(env), { logger: false, underPressure: false })
        : name === 'retrieval-proxy'
          ? await buildProxy(proxyCfg(env), { logger: false, underPressure: false })
          : await buildAgents(agentsCfg(env), { logger: false, underPressure: false });
    try {
      // Counting starts once the Redis of the auth records answers (readiness check `auth`; the worker opens its own
      // connection for it): a guess before that is allowed uncounted (the limits fail open while Redis is not ready),
      // which on CI's loaded machine moved the lock to the 61st guess.
      await waitFor('the auth Redis', async () => ((await app.inject('/ready')).json<{ checks?: Record<string, { ok: boolean }> }>().checks?.auth?.ok ? true : undefined));
      const statuses: number[] = [];
      // Wrong tokens: guessing any credential (the admin token included) locks the address out.
      for (let i = 0; i < 60; i++) {
        const r = await app.inject({ method: 'POST', url: '/api/v1/cache/invalidate', headers: { authorization: 'Bearer guess' }, payload: { category: 'x' } });
        statuses.push(r.statusCode);
      }
      expect(statuses.slice(0, 59).every((s) => s === 401), JSON.stringify(statuses)).toBe(true);
      const limited = await app.inject({ method: 'POST', url: '/api/v1/cache/invalidate', headers: ADMIN, payload: { category: 'x' } });
      expect(statuses[59]).toBe(429);
      expect(limited.statusCode).toBe(429);
      expect(limited.json<{ code: string }>().code).toMatch(/RATE_LIMIT/);
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
      expect((await app.inject('/health')).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
interface OpenApi {
  paths: Record<string, Record<string, { requestBody?: { content?: Record<string, unknown> } }>>;
}

const BIG = 17 * 1024 * 1024;
const bigJson = Buffer.concat([Buffer.from('{"input":"'), Buffer.alloc(BIG, 'a'), Buffer.from('"}')]);
const justOverDefault = Buffer.concat([Buffer.from('{"unknownProperty":"'), Buffer.alloc(1_048_576, 'a'), Buffer.from('"}')]);

function multipart(size: number): { payload: Buffer; headers: Record<string, string> } {
  const boundary = `----fault${randomUUID().slice(0, 8)}`;
  const payload = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\nContent-Type: text/plain\r\n\r\n`),
    Buffer.alloc(size, 'a'),
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return { payload, headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

const fillPath = (path: string): string => path.replace(/\{[^}]+\}/g, randomUUID());

/**
 * Routes whose own body limit is above 17 MiB on purpose: the worker's background jobs (EMBEDDINGS_JOB_BODY_LIMIT_BYTES
 * and PROCESS_JOB_BODY_LIMIT_BYTES, 64 MiB by default). Their 413 past that limit is shown in
 * services/multimodal-worker/test/jobs.test.ts (with small limits, rather than 65 MiB bodies here).
 */
const OWN_LIMITS = new Set(['POST /api/v1/jobs/embeddings', 'POST /api/v1/jobs/process']);

describe('body size limits on every POST/PUT route of /docs/json', () => {
  it.each(['multimodal-worker', 'retrieval-proxy', 'ai-agents'] as const)('%s: a 17 MiB body is 413 on every route, and the service keeps serving', async (name) => {
    const redis = await servers.start();
    const env = { REDIS_URL: redis.url, MULTIMODAL_WORKER_URL: 'http://127.0.0.1:1', RETRIEVAL_PROXY_URL: 'http://127.0.0.1:1' };
    const app: FastifyInstance =
      name === 'multimodal-worker'
        ? await buildWorker(workerCfg(env), { logger: false, underPressure: false, adminRateLimit: false })
        : name === 'retrieval-proxy'
          ? await buildProxy(proxyCfg(env), { logger: false, underPressure: false, adminRateLimit: false })
          : await buildAgents(agentsCfg(env), { logger: false, underPressure: false });
    try {
      const doc = (await app.inject('/docs/json')).json<OpenApi>();
      const routes: Array<{ method: string; path: string; multipart: boolean }> = [];
      for (const [path, ops] of Object.entries(doc.paths)) {
        for (const [method, op] of Object.entries(ops)) {
          if (method !== 'post' && method !== 'put' && method !== 'patch') continue;
          routes.push({ method: method.toUpperCase(), path, multipart: Object.keys(op.requestBody?.content ?? {}).some((c) => c.startsWith('multipart/')) });
        }
      }
      expect(routes.length).toBeGreaterThan(0);
      const over: Record<string, number> = {};
      const overDefault: Record<string, number> = {};
      for (const r of routes) {
        const key = `${r.method} ${r.path}`;
        if (!OWN_LIMITS.has(key)) {
          const big = r.multipart ? multipart(BIG) : { payload: bigJson, headers: { 'content-type': 'application/json' } };
          const res = await app.inject({ method: r.method as 'POST', url: fillPath(r.path), payload: big.payload, headers: { ...big.headers, ...ADMIN } });
          over[key] = res.statusCode;
        }
        if (!r.multipart) {
          const res2 = await app.inject({ method: r.method as 'POST', url: fillPath(r.path), payload: justOverDefault, headers: { 'content-type': 'application/json', ...ADMIN } });
          overDefault[key] = res2.statusCode;
        }
      }
      // Routes that take more than BODY_LIMIT_BYTES (1 MiB) on purpose, with their own limit.
      const larger = Object.entries(overDefault).filter(([, s]) => s !== 413).map(([k]) => k).sort();
      (figures.bodyLimits ??= {} as Record<string, unknown>);
      (figures.bodyLimits as Record<string, unknown>)[name] = { status17MiB: over, acceptsOver1MiB: larger };
      expect(Object.entries(over).filter(([, s]) => s !== 413)).toEqual([]);
      expect(larger).toEqual(
        {
          'multimodal-worker': ['POST /api/v1/embeddings', 'POST /api/v1/jobs/embeddings', 'POST /api/v1/jobs/process', 'POST /api/v1/process/text'],
          'retrieval-proxy': ['POST /api/v1/documents', 'POST /api/v1/jobs/ingest'],
          'ai-agents': [],
        }[name],
      );
      expect((await app.inject('/health')).statusCode).toBe(200);
      const ok = await app.inject({ method: 'POST', url: '/api/v1/cache/test', headers: ADMIN });
      expect(ok.statusCode, ok.body).toBe(200);
    } finally {
      await app.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) out.push(...sourceFiles(full));
    else if (full.endsWith('.ts')) out.push(full);
  }
  return out;
}

/** Call sites that read files or open network connections, as `file: what`. */
function ioCallSites(roots: string[]): string[] {
  const sites: string[] = [];
  const patterns: Array<[string, RegExp]> = [
    ['fs import', /from ['"](node:)?fs(\/promises)?['"]/],
    ['file read', /\b(readFile|readFileSync|createReadStream|openSync|readdir|readdirSync|opendir)\s*\(/],
    ['fs.*', /\bfs\.[a-zA-Z]+\s*\(/],
    ['undici import', /from ['"]undici['"]/],
    ['fetch', /\bfetch\s*\(/],
    ['undici request', /(?<![.\w])request\s*\(/],
    ['pool', /\bnew (Pool|Client|Agent)\s*\(/],
    ['peer client', /\bnew PeerClient\s*\(/],
    ['http module', /from ['"](node:)?(http|https|net|tls)['"]/],
  ];
  for (const root of roots) {
    for (const file of sourceFiles(join(REPO, root))) {
      const lines = readFileSync(file, 'utf8').split('\n');
      lines.forEach((line) => {
        if (/^\s*(\/\/|\*|\/\*)/.test(line)) return;
        for (const [what, re] of patterns) if (re.test(line)) sites.push(`${relative(REPO, file)}: ${what}`);
      });
    }
  }
  return [...new Set(sites)].sort();
}

describe('no route fetches a URL or opens a path a caller supplies', () => {
  it('services/*/src: the only network call sites are the configured peers and model endpoints; no file is read', () => {
    expect(ioCallSites(['services/multimodal-worker/src', 'services/retrieval-proxy/src', 'services/ai-agents/src'])).toEqual([
      // LLM_BASE_URL (config) + '/chat/completions'
      'services/ai-agents/src/app.ts: peer client', // RETRIEVAL_PROXY_URL
      'services/ai-agents/src/providers/openai-compatible.ts: undici import',
      'services/ai-agents/src/providers/openai-compatible.ts: undici request',
      // EMBEDDINGS_BASE_URL (config) + '/embeddings'
      'services/multimodal-worker/src/providers/openai.ts: pool', // an undici Agent (connection settings), no URL
      'services/multimodal-worker/src/providers/openai.ts: undici import',
      'services/multimodal-worker/src/providers/openai.ts: undici request',
      'services/retrieval-proxy/src/domain/embedder.ts: peer client', // MULTIMODAL_WORKER_URL
    ]);
    // Those URLs are fixed at construction from the options the app builds from config.
    const llm = readFileSync(join(REPO, 'services/ai-agents/src/providers/openai-compatible.ts'), 'utf8');
    expect(llm).toMatch(/this\.#url = `\$\{opts\.baseUrl[^`]*\}\/chat\/completions`/);
    expect(llm).toMatch(/request\(this\.#url,/);
    const emb = readFileSync(join(REPO, 'services/multimodal-worker/src/providers/openai.ts'), 'utf8');
    expect(emb).toMatch(/this\.base = opts\.baseUrl/);
    // Paths: a constant, and the configured model id (EMBEDDINGS_MODEL; GET /api/v1/models/* only finds configured models).
    expect([...emb.matchAll(/this\.call\('(GET|POST)', ([^,)]+)/g)].map((m) => m[2])).toEqual(["'/embeddings'", '`/models/${encodeURIComponent(this.id']);
    expect(emb).toMatch(/this\.id = opts\.model/);
  });

  it('packages/cache and service-kit read only files named by configuration (REDIS_TLS_CA_FILE, .env)', () => {
    expect(ioCallSites(['packages/cache/src', 'packages/service-kit/src'])).toEqual([
      'packages/cache/src/config.ts: file read', // REDIS_TLS_CA_FILE
      'packages/cache/src/config.ts: fs import',
      'packages/cache/src/config.ts: http module', // node:net isIP only (no TLS server name for an IP)
      'packages/service-kit/src/app.ts: http module', // STATUS_CODES and types only
      'packages/service-kit/src/config.ts: file read', // .env
      'packages/service-kit/src/config.ts: fs import',
      'packages/service-kit/src/peer-client.ts: pool', // Pool(origin of the configured base URL)
      'packages/service-kit/src/peer-client.ts: undici import',
    ]);
  });

  it('ingesting a document whose source is a file: or http: URL stores the given text and fetches nothing', async () => {
    let hits = 0;
    const listener: Server = createServer((_req, res) => {
      hits++;
      res.end('FETCHED-CONTENT');
    });
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', () => r()));
    const port = (listener.address() as { port: number }).port;
    const redis = await servers.start();
    const w = await buildWorker(workerCfg({ REDIS_URL: redis.url }), { logger: false, underPressure: false });
    const p = await buildProxy(proxyCfg({ REDIS_URL: redis.url, MULTIMODAL_WORKER_URL: await listen(w) }), { logger: false, underPressure: false });
    try {
      for (const source of ['file:///etc/passwd', `http://127.0.0.1:${port}/secret`, '/etc/passwd']) {
        const text = `A document that only names its source (${randomUUID()}).`;
        const ing = await p.inject({ method: 'POST', url: '/api/v1/documents', payload: { title: 'label only', text, source } });
        expect(ing.statusCode, ing.body).toBe(201);
        const doc = (await p.inject(`/api/v1/documents/${ing.json<{ id: string }>().id}`)).json<{ source: string; chunks: Array<{ text: string }> }>();
        expect(doc.source).toBe(source);
        expect(doc.chunks.map((c) => c.text).join('')).toBe(text);
      }
      // The worker's process routes take text or an upload, never a path or URL to read.
      const r = await w.inject({ method: 'POST', url: '/api/v1/process/text', payload: { text: 'file:///etc/passwd', filename: '/etc/passwd' } });
      expect(r.statusCode, r.body).toBe(200);
      expect(r.json<{ chunks: Array<{ text: string }> }>().chunks.map((c) => c.text)).toEqual(['file:///etc/passwd']);
      expect(hits).toBe(0);
    } finally {
      await p.close();
      await w.close();
      await new Promise((r) => listener.close(r));
    }
  });
});
