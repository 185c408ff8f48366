import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { scanKeys, startRedisServer, type RedisServer, type TestRedis } from '@aicache/test-redis';
import { Redis } from 'ioredis';
import type { ServiceApp } from '@aicache/service-kit';
import { docs, makeApp, rawClient, startFakeWorker, testConfig, testRedis, wipe, type FakeWorker } from './helpers.js';

const DB = 7;
let redis: TestRedis;
let raw: Redis;
/** Closed after each test, whatever it left open. */
const cleanups: Array<() => Promise<unknown> | unknown> = [];

beforeAll(async () => {
  redis = await testRedis();
  raw = rawClient(redis, DB);
});

afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
  await wipe(raw);
});

afterAll(async () => {
  raw?.disconnect();
  await redis?.stop();
});

async function worker(): Promise<FakeWorker> {
  const w = await startFakeWorker();
  cleanups.push(() => w.close());
  return w;
}

async function app(config: ReturnType<typeof testConfig>, overrides: Parameters<typeof makeApp>[1] = {}): Promise<ServiceApp> {
  const a = await makeApp(config, overrides);
  cleanups.push(() => a.close());
  return a;
}

const ingest = (a: ServiceApp, payload: object) => a.inject({ method: 'POST', url: '/api/v1/documents', payload });
const search = (a: ServiceApp, payload: object) => a.inject({ method: 'POST', url: '/api/v1/search', payload });
/** The status, with the body in the failure message (a flaky 503 says which dependency it was). */
const expectStatus = (res: { statusCode: number; body: string }, status: number) => expect(res.statusCode, res.body).toBe(status);
const ids = (res: { json(): { results: Array<{ documentId: string }> } }) => res.json().results.map((r) => r.documentId);

describe('state survives', () => {
  it('keeps the index across a restart: a new app on the same Redis finds the documents', async () => {
    const w = await worker();
    const config = testConfig(redis, DB, w.url);
    const first = await makeApp(config);
    expectStatus(await ingest(first, docs.refunds), 201);
    expectStatus(await ingest(first, docs.shipping), 201);
    await first.close();

    const second = await app(config);
    const res = await search(second, { query: 'international shipping customs', limit: 1 });
    expect(res.statusCode).toBe(200);
    expect(ids(res)).toEqual(['shipping']);
    expect((await second.inject({ url: '/api/v1/documents/refund-policy' })).json().chunks[0].text).toBe(docs.refunds.text);
    expect((await second.inject({ url: '/api/v1/documents' })).json().total).toBe(2);
  });

  it('keeps replicas on the same corpus: an ingest or delete on one is seen by the other', async () => {
    const w = await worker();
    const config = testConfig(redis, DB, w.url);
    const a = await app(config);
    const b = await app(config);
    const query = { query: 'warranty for broken hardware' };

    expect(ids(await search(b, query))).toEqual([]);
    expectStatus(await ingest(a, { id: 'warranty', title: 'Warranty', text: 'The warranty covers broken hardware for two years.' }), 201);
    const seen = await search(b, query);
    expect(seen.headers['x-cache']).toBe('miss');
    expect(ids(seen)).toEqual(['warranty']);

    expect((await b.inject({ method: 'DELETE', url: '/api/v1/documents/warranty' })).statusCode).toBe(204);
    const gone = await search(a, query);
    expect(gone.headers['x-cache']).toBe('miss');
    expect(ids(gone)).toEqual([]);
  });
});

describe('multimodal-worker down', () => {
  it('answers cached searches, and 503 for new searches, context and ingests, storing nothing', async () => {
    const w = await worker();
    const a = await app(testConfig(redis, DB, w.url));
    expectStatus(await ingest(a, docs.refunds), 201);
    const cached = await search(a, { query: 'refund' });
    expect(cached.headers['x-cache']).toBe('miss');
    expect((await a.inject({ url: '/ready' })).statusCode).toBe(200);
    const version = await raw.get('state:retrieval-proxy:corpus_version');

    await w.close();

    const hit = await search(a, { query: 'refund' });
    expect(hit.statusCode).toBe(200);
    expect(hit.headers['x-cache']).toBe('hit');
    expect(hit.body).toBe(cached.body);

    const miss = await search(a, { query: 'something new' });
    expect(miss.statusCode).toBe(503);
    expect(miss.json()).toMatchObject({ code: 'PEER_UNAVAILABLE' });
    expect(miss.json().message).toMatch(/multimodal-worker/);

    expect((await a.inject({ method: 'POST', url: '/api/v1/context', payload: { query: 'new question' } })).statusCode).toBe(503);

    const put = await ingest(a, docs.shipping);
    expect(put.statusCode).toBe(503);
    expect(put.json().code).toBe('PEER_UNAVAILABLE');
    expect((await a.inject({ url: '/api/v1/documents/shipping' })).statusCode).toBe(404);
    expect(await raw.get('state:retrieval-proxy:corpus_version')).toBe(version);
    expect(await scanKeys(raw, 'retrieval-proxy:search_results:*')).toHaveLength(1);

    const ready = await a.inject({ url: '/ready' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json().status).toBe('not_ready');
    expect(ready.json().checks['multimodal-worker']).toMatchObject({ ok: false, required: true });
    expect((await a.inject({ url: '/api/v1/documents/refund-policy' })).statusCode).toBe(200);
  });

  it('answers 502 when the worker sends something that is not embeddings', async () => {
    const w = await worker();
    const a = await app(testConfig(redis, DB, w.url));
    w.garbage = true;
    const res = await ingest(a, docs.refunds);
    expect(res.statusCode).toBe(502);
    expect(res.json().code).toBe('PEER_ERROR');
  });
});

describe('Redis trouble', () => {
  let server: RedisServer | undefined;
  afterEach(async () => {
    await server?.stop().catch(() => undefined);
    server = undefined;
  });

  it('answers from origin when the cache Redis is down, reporting degraded readiness', async () => {
    server = await startRedisServer();
    const w = await worker();
    const state = new Redis(redis.url, { db: DB });
    cleanups.push(() => state.disconnect());
    // Cache on the private server, the document index on the shared test Redis.
    const a = await app(testConfig(redis, DB, w.url, { REDIS_URL: server.url }), { stateClient: state });
    expectStatus(await ingest(a, docs.refunds), 201);
    expect((await search(a, { query: 'refund' })).headers['x-cache']).toBe('miss');
    expect((await search(a, { query: 'refund' })).headers['x-cache']).toBe('hit');

    await server.kill();

    const res = await search(a, { query: 'refund' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-cache']).toBe('miss');
    expect(ids(res)).toEqual(['refund-policy']);
    const ready = await a.inject({ url: '/ready' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json().status).toBe('degraded');
    expect(ready.json().checks.redis).toMatchObject({ ok: false, required: false });
  });

  it('answers 503 STATE_UNAVAILABLE for writes and reads of documents when the document index Redis is down, searches from the last known corpus (x-corpus: last-known), and is not_ready', async () => {
    server = await startRedisServer();
    const w = await worker();
    const a = await app(testConfig(redis, DB, w.url, { REDIS_STATE_URL: server.url, STATE_TIMEOUT_MS: '1000' }));
    expectStatus(await ingest(a, docs.refunds), 201);
    expect(await scanKeys(raw, 'state:retrieval-proxy:doc*')).toEqual([]);
    // A search before the outage: this replica knows the corpus with the document.
    expect(ids(await search(a, { query: 'refund policy' }))).toEqual(['refund-policy']);

    await server.kill();

    const res = await search(a, { query: 'refund' });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['x-corpus']).toBe('last-known');
    expect(ids(res)).toEqual(['refund-policy']);
    const context = await a.inject({ method: 'POST', url: '/api/v1/context', payload: { query: 'refund' } });
    expect(context.statusCode).toBe(200);
    expect(context.headers['x-corpus']).toBe('last-known');

    for (const res of [
      await ingest(a, docs.shipping),
      await a.inject({ url: '/api/v1/documents/refund-policy' }),
      await a.inject({ method: 'DELETE', url: '/api/v1/documents/refund-policy' }),
    ]) {
      expect(res.statusCode).toBe(503);
      expect(res.json().code).toBe('STATE_UNAVAILABLE');
    }
    const ready = await a.inject({ url: '/ready' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json().checks.state.ok).toBe(false);
  });
});

describe('a paused state Redis', () => {
  let server: RedisServer | undefined;
  afterEach(async () => {
    server?.resume();
    await server?.stop().catch(() => undefined);
    server = undefined;
  });

  it('an ingest or delete that times out answers 503 with Retry-After and never lands after the resume', async () => {
    server = await startRedisServer();
    const w = await worker();
    const stateUrl = server.url;
    const a = await app(testConfig(redis, DB, w.url, { REDIS_STATE_URL: stateUrl, STATE_TIMEOUT_MS: '500' }));
    expectStatus(await ingest(a, docs.refunds), 201);
    const state = new Redis(stateUrl, { db: DB });
    cleanups.push(() => state.disconnect());
    const before = await state.get('state:retrieval-proxy:corpus_version');

    server.pause();
    let put;
    let del;
    try {
      [put, del] = await Promise.all([ingest(a, docs.shipping), a.inject({ method: 'DELETE', url: '/api/v1/documents/refund-policy' })]);
    } finally {
      server.resume();
    }
    for (const res of [put, del]) {
      expect(res.statusCode, res.body).toBe(503);
      expect(res.json().code).toBe('STATE_UNAVAILABLE');
      expect(res.headers['retry-after']).toBe('1');
    }
    // Redis runs the queued writes now, past their deadlines: nothing changes.
    expect(await state.ping()).toBe('PONG');
    expect(await state.exists('state:retrieval-proxy:doc:shipping')).toBe(0);
    expect(await state.exists('state:retrieval-proxy:doc:refund-policy')).toBe(1);
    expect(await state.get('state:retrieval-proxy:corpus_version')).toBe(before);
    expectStatus(await a.inject({ url: '/api/v1/documents/refund-policy' }), 200);
  });
});

describe('ops routes', () => {
  it('serves /health, /ready, /metrics and the OpenAPI document with every route', async () => {
    const w = await worker();
    const a = await app(testConfig(redis, DB, w.url));
    expect((await a.inject({ url: '/health' })).json().status).toBe('ok');
    const ready = (await a.inject({ url: '/ready' })).json();
    expect(ready.status).toBe('ready');
    expect(Object.keys(ready.checks).sort()).toEqual(['auth', 'multimodal-worker', 'redis', 'state']);
    await search(a, { query: 'x' });
    expect((await a.inject({ url: '/metrics' })).body).toMatch(/category="search_results"/);
    const spec = (await a.inject({ url: '/docs/json' })).json();
    for (const path of ['/api/v1/documents', '/api/v1/documents/{id}', '/api/v1/search', '/api/v1/context', '/api/v1/cache/search/{pattern}']) {
      expect(spec.paths).toHaveProperty([path]);
    }
  });
});
