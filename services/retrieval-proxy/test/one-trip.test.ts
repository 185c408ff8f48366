import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startDelayProxy, type DelayProxy, type TestRedis } from '@aicache/test-redis';
import type { Redis } from 'ioredis';
import { statsKey } from '@aicache/cache';
import type { ServiceApp } from '@aicache/service-kit';
import { docs, makeApp, rawClient, startFakeWorker, testConfig, testRedis, wipe, type FakeWorker } from './helpers.js';

// A cached search reads the corpus stamp (state connection) and the cache entry at the stamp it predicts (cache
// connection) together: one round trip while the corpus does not move, and never an answer of an older corpus.

const DB = 10;
/** Each way on the state link: a state reply comes no sooner than 2 × this after its command. */
const STATE_DELAY_MS = 25;

let redis: TestRedis;
let raw: Redis;
let worker: FakeWorker;
let stateLink: DelayProxy;
const cleanups: Array<() => Promise<unknown> | unknown> = [];

beforeAll(async () => {
  redis = await testRedis();
  raw = rawClient(redis, DB);
  worker = await startFakeWorker();
  const u = new URL(redis.url);
  stateLink = await startDelayProxy({ host: u.hostname, port: Number(u.port || 6379) }, STATE_DELAY_MS);
});

afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
  await wipe(raw);
});

afterAll(async () => {
  await stateLink?.close();
  await worker?.close();
  raw?.disconnect();
  await redis?.stop();
});

/** An app whose state connection goes through the delayed link (the cache connection goes straight to Redis). */
async function proxyApp(): Promise<ServiceApp> {
  const u = new URL(redis.url);
  u.host = `${stateLink.host}:${stateLink.port}`;
  const app = await makeApp(testConfig(redis, DB, worker.url, { REDIS_STATE_URL: u.toString() }));
  cleanups.push(() => app.close());
  return app;
}

/** The cache's stats flush: a script on the service's stats hash, every second, whatever the requests do. */
const statsFlush = (cmd: { name: string; args: unknown[] }) => (cmd.name === 'evalsha' || cmd.name === 'eval') && cmd.args.some((a) => String(a) === statsKey('retrieval-proxy'));

/**
 * `state>mget` when a command is sent on the state connection, `state<mget` when its reply arrived: every command of
 * both connections but the stats flush.
 */
function recordCommands(app: ServiceApp): string[] {
  const log: string[] = [];
  const conns = (app as unknown as { redis: { cache: Redis; state?: Redis } }).redis;
  for (const [name, client] of [
    ['cache', conns.cache],
    ['state', conns.state],
  ] as const) {
    if (!client) continue; // pgvector: no state Redis
    const send = client.sendCommand.bind(client);
    client.sendCommand = (cmd, stream) => {
      if (statsFlush(cmd)) return send(cmd, stream);
      log.push(`${name}>${cmd.name}`);
      cmd.promise.then(
        () => log.push(`${name}<${cmd.name}`),
        () => log.push(`${name}!${cmd.name}`),
      );
      return send(cmd, stream);
    };
  }
  return log;
}

const ingest = (a: ServiceApp, payload: object) => a.inject({ method: 'POST', url: '/api/v1/documents', payload });
const search = (a: ServiceApp, payload: object) => a.inject({ method: 'POST', url: '/api/v1/search', payload });
const context = (a: ServiceApp, payload: object) => a.inject({ method: 'POST', url: '/api/v1/context', payload });
const ids = (res: { json(): { results: Array<{ documentId: string }> } }) => res.json().results.map((r) => r.documentId);
const counted = (a: ServiceApp) => {
  type Counts = { hits: number; misses: number };
  const c = (a as unknown as { cache: { counters(): { search_results: Counts; context_bundles: Counts } } }).cache.counters();
  return { search: c.search_results, context: c.context_bundles };
};

describe('a cached search waits one round trip', () => {
  it('steady state: one command on each connection, both sent before either reply; counted as one hit', async () => {
    const a = await proxyApp();
    expect((await ingest(a, docs.refunds)).statusCode).toBe(201);
    const q = { query: 'refund policy' };
    expect((await search(a, q)).headers['x-cache']).toBe('miss');
    expect((await context(a, q)).headers['x-cache']).toBe('miss');
    const log = recordCommands(a);
    const before = counted(a);
    for (const ask of [search, context]) {
      log.length = 0;
      const res = await ask(a, q);
      expect(res.statusCode).toBe(200);
      expect(res.headers['x-cache']).toBe('hit');
      // The entry's GET left before the stamp's MGET was answered (the state link holds that reply 2 × 25 ms).
      expect(log).toEqual(['cache>get', 'state>mget', 'cache<get', 'state<mget']);
    }
    expect(ids(await search(a, q))).toEqual(['refund-policy']);
    const after = counted(a);
    expect(after.search).toMatchObject({ hits: before.search.hits + 2, misses: before.search.misses });
    expect(after.context).toMatchObject({ hits: before.context.hits + 1, misses: before.context.misses });
  });

  it('the first search after the stamp moved reads the entry again at the new stamp; the guessed read counts nothing', async () => {
    const a = await proxyApp();
    const b = await proxyApp();
    expect((await ingest(a, docs.refunds)).statusCode).toBe(201);
    const q = { query: 'refund policy' };
    await search(a, q);
    expect((await search(b, q)).headers['x-cache']).toBe('hit');
    expect((await ingest(a, docs.shipping)).statusCode).toBe(201);
    // A has the new stamp cached, B guesses the old one.
    expect((await search(a, q)).headers['x-cache']).toBe('miss');
    const log = recordCommands(b);
    const before = counted(b);
    const res = await search(b, q);
    expect(res.headers['x-cache']).toBe('hit');
    // The guessed GET (old stamp) and the MGET together, then the GET of the entry at the stamp read.
    expect(log).toEqual(['cache>get', 'state>mget', 'cache<get', 'state<mget', 'cache>get', 'cache<get']);
    expect(counted(b).search).toMatchObject({ hits: before.search.hits + 1, misses: before.search.misses });
    log.length = 0;
    expect((await search(b, q)).headers['x-cache']).toBe('hit');
    expect(log).toEqual(['cache>get', 'state>mget', 'cache<get', 'state<mget']);
  });
});

describe('no answer of an older corpus after an acknowledged write on another replica', () => {
  it('after an ingest, a delete and a re-ingest on B, A answers from the new corpus at once', async () => {
    const a = await proxyApp();
    const b = await proxyApp();
    const q = { query: 'warranty for broken hardware' };
    expect((await ingest(b, docs.refunds)).statusCode).toBe(201);
    expect(ids(await search(a, q))).toEqual(['refund-policy']);
    // Cached on A, and A's guess is this stamp.
    const cached = await search(a, q);
    expect(cached.headers['x-cache']).toBe('hit');
    expect(ids(cached)).toEqual(['refund-policy']);

    expect((await ingest(b, { id: 'warranty', title: 'Warranty', text: 'The warranty covers broken hardware for two years.' })).statusCode).toBe(201);
    const seen = await search(a, q);
    expect(seen.headers['x-cache']).toBe('miss');
    expect(ids(seen)).toEqual(['warranty', 'refund-policy']);
    expect((await search(a, q)).headers['x-cache']).toBe('hit');

    expect((await b.inject({ method: 'DELETE', url: '/api/v1/documents/warranty' })).statusCode).toBe(204);
    const gone = await search(a, q);
    expect(gone.headers['x-cache']).toBe('miss');
    expect(ids(gone)).toEqual(['refund-policy']);

    // Back with other text: the answer cached for the first version of it is not served either.
    expect((await ingest(b, { id: 'warranty', title: 'Warranty v2', text: 'The warranty covers broken hardware for three years.' })).statusCode).toBe(201);
    const back = await search(a, q);
    expect(back.headers['x-cache']).toBe('miss');
    expect(back.json().results[0].title).toBe('Warranty v2');
  });

  it('each of five re-ingests on B is seen by the next search on A, which A had cached at the stamp before', async () => {
    const a = await proxyApp();
    const b = await proxyApp();
    const q = { query: 'shipping customs' };
    await search(a, q);
    await search(a, q);
    for (let i = 0; i < 5; i++) {
      const text = `Shipping through customs round ${i}.`;
      expect((await ingest(b, { id: 'shipping', title: `Shipping ${i}`, text })).statusCode).toBe(201);
      const res = await search(a, q);
      expect(res.json().results[0].title).toBe(`Shipping ${i}`);
      expect((await search(a, q)).json().results[0].title).toBe(`Shipping ${i}`);
    }
  });
});

const DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

async function pgAnswers(): Promise<boolean> {
  const c = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    return (await c.query("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")).rows.length > 0;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => undefined);
  }
}
const withPg = await pgAnswers();
if (!withPg) console.warn('pgvector one-trip test skipped: PostgreSQL with pgvector does not answer');

describe.skipIf(!withPg)('the pgvector engine: the stamp SELECT and the cache GET leave together', () => {
  const schema = `test_trip_${randomBytes(5).toString('hex')}`;
  let cacheLink: DelayProxy;
  beforeAll(async () => {
    const u = new URL(redis.url);
    cacheLink = await startDelayProxy({ host: u.hostname, port: Number(u.port || 6379) }, STATE_DELAY_MS);
  });
  afterAll(async () => {
    await cacheLink?.close();
    const c = new pg.Client({ connectionString: DATABASE_URL });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await c.end();
  });

  it('steady state: one SQL query and one cache GET, both sent before either is answered; a write on B is seen by A', async () => {
    // The cache link is the slow one here: its GET is answered no sooner than 2 × 25 ms after it left.
    const u = new URL(redis.url);
    u.host = `${cacheLink.host}:${cacheLink.port}`;
    const pgApp = async () => {
      const app = await makeApp(testConfig(redis, DB, worker.url, { REDIS_URL: u.toString(), RETRIEVAL_INDEX: 'pgvector', DATABASE_URL, RETRIEVAL_PG_SCHEMA: schema }));
      cleanups.push(() => app.close());
      return app;
    };
    const a = await pgApp();
    const b = await pgApp();
    expect((await ingest(a, docs.refunds)).statusCode).toBe(201);
    const q = { query: 'refund policy' };
    expect((await search(a, q)).headers['x-cache']).toBe('miss');

    const log = recordCommands(a);
    const query = pg.Client.prototype.query;
    const queries: string[] = [];
    pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
      const text = typeof args[0] === 'string' ? args[0] : String((args[0] as { text?: string }).text);
      queries.push(text);
      log.push('pg>query');
      const out = (query as (...a: unknown[]) => unknown).apply(this, args);
      if (out instanceof Promise) out.then(() => log.push('pg<query'), () => log.push('pg!query'));
      return out;
    } as typeof query;
    try {
      const res = await search(a, q);
      expect(res.headers['x-cache']).toBe('hit');
      expect(queries).toHaveLength(1);
      expect(queries[0]).toMatch(/SELECT c\.epoch, c\.version, c\.model, t\.version AS written FROM \S+\.corpus c LEFT JOIN \S+\.tenants t/);
      expect(log.filter((e) => e.startsWith('cache'))).toEqual(['cache>get', 'cache<get']);
      // Both sent before either was answered.
      expect(log.slice(0, 2).sort()).toEqual(['cache>get', 'pg>query']);
    } finally {
      pg.Client.prototype.query = query;
    }

    expect((await ingest(b, docs.shipping)).statusCode).toBe(201);
    const seen = await search(a, q);
    expect(seen.headers['x-cache']).toBe('miss');
    expect(seen.json().results.map((r: { documentId: string }) => r.documentId)).toContain('shipping');
  });
});
