import { randomBytes } from 'node:crypto';
import Fastify from 'fastify';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServiceApp } from '@aicache/service-kit';
import { ConfigError } from '@aicache/service-kit';
import { loadConfig } from '../src/config.js';
import { pgVectorAvailability } from '../src/domain/pgvector-index.js';
import { ADMIN_TOKEN, docs, makeApp, rawClient, startFakeWorker, testConfig, testRedis, type FakeWorker } from './helpers.js';
import type { TestRedis } from '@aicache/test-redis';

/**
 * The pgvector engine against the machine's PostgreSQL with the pgvector extension
 * (infra/scripts/install-pgvector.sh; `.ci/run` runs it). Each run uses a schema of its own.
 */
const DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const DB = 9;

const pgState = await pgVectorAvailability(DATABASE_URL);
const unavailable = pgState.reason;
if (unavailable) console.warn(`pgvector engine tests skipped: ${unavailable}`);
// Where PostgreSQL runs (CI always has it) a missing extension is a failure, not a reason to skip.
const pgAnswers = pgState.answers;

const schemas: string[] = [];
const newSchema = () => {
  const s = `test_${randomBytes(6).toString('hex')}`;
  schemas.push(s);
  return s;
};

let redis: TestRedis;
let worker: FakeWorker;
const apps: ServiceApp[] = [];

async function proxy(schema: string, extra: Record<string, string> = {}, workerUrl = worker.url): Promise<ServiceApp> {
  const app = await makeApp(testConfig(redis, DB, workerUrl, { RETRIEVAL_INDEX: 'pgvector', DATABASE_URL, RETRIEVAL_PG_SCHEMA: schema, ...extra }));
  apps.push(app);
  return app;
}

const ingest = (app: ServiceApp, body: object) => app.inject({ method: 'POST', url: '/api/v1/documents', payload: body });
const search = (app: ServiceApp, body: object) => app.inject({ method: 'POST', url: '/api/v1/search', payload: body });
const ids = (res: { json: () => { results: Array<{ documentId: string }> } }) => res.json().results.map((r) => r.documentId);

describe.skipIf(!pgAnswers)('the pgvector engine (RETRIEVAL_INDEX=pgvector)', () => {
  beforeAll(async () => {
    expect(unavailable, unavailable).toBe('');
    redis = await testRedis();
    worker = await startFakeWorker();
  });

  afterAll(async () => {
    for (const app of apps) await app.close();
    await worker?.close();
    const c = new pg.Client({ connectionString: DATABASE_URL });
    await c.connect();
    for (const s of schemas) await c.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
    await c.end();
    await redis?.stop();
  });

  it('ingests, lists, reads, searches and deletes, with the same answers as the Redis engine gives', async () => {
    const app = await proxy(newSchema());
    for (const d of [docs.refunds, docs.shipping, docs.german]) expect((await ingest(app, d)).statusCode).toBe(201);

    const list = (await app.inject({ method: 'GET', url: '/api/v1/documents' })).json<{ total: number; documents: Array<{ id: string }> }>();
    expect(list.total).toBe(3);
    expect(list.documents.map((d) => d.id)).toEqual(['refund-policy', 'rueckgabe', 'shipping']);

    const one = (await app.inject({ method: 'GET', url: '/api/v1/documents/refund-policy' })).json<{ chunks: Array<{ text: string }>; metadata: object }>();
    expect(one.metadata).toEqual(docs.refunds.metadata);
    expect(one.chunks.map((c) => c.text).join(' ')).toContain('original payment method');

    const first = await search(app, { query: 'refund within 30 days', limit: 2 });
    expect(first.statusCode).toBe(200);
    expect(first.headers['x-cache']).toBe('miss');
    expect(ids(first)[0]).toBe('refund-policy');
    const again = await search(app, { query: 'refund within 30 days', limit: 2 });
    expect(again.headers['x-cache']).toBe('hit');
    expect(again.json()).toEqual(first.json());

    expect((await app.inject({ method: 'DELETE', url: '/api/v1/documents/refund-policy' })).statusCode).toBe(204);
    expect((await app.inject({ method: 'DELETE', url: '/api/v1/documents/refund-policy' })).statusCode).toBe(404);
    const after = await search(app, { query: 'refund within 30 days', limit: 2 });
    expect(after.headers['x-cache']).toBe('miss');
    expect(ids(after)).not.toContain('refund-policy');
  });

  it('counts documents and chunks for the stats snapshot', async () => {
    const app = await proxy(newSchema());
    for (const d of [docs.refunds, docs.shipping]) expect((await ingest(app, d)).statusCode).toBe(201);
    const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
    const started = await app.inject({ method: 'POST', url: '/api/v1/jobs/schedules/stats-snapshot/run', headers: admin });
    expect(started.statusCode, started.body).toBe(202);
    let job: { state: string; result?: { id: string; documents: number; chunks: number } } = { state: '' };
    for (let i = 0; i < 200 && job.state !== 'completed' && job.state !== 'failed'; i++) {
      await new Promise((r) => setTimeout(r, 50));
      job = (await app.inject({ method: 'GET', url: `/api/v1/jobs/${started.json().id}?tenant=_system`, headers: admin })).json();
    }
    expect(job.state).toBe('completed');
    expect(job.result?.documents).toBe(2);
    const chunks = (await Promise.all(['refund-policy', 'shipping'].map(async (id) => (await app.inject({ method: 'GET', url: `/api/v1/documents/${id}` })).json().chunks.length as number))).reduce((a, b) => a + b, 0);
    expect(job.result?.chunks).toBe(chunks);
    // The snapshot went to the shared test Redis: not left there.
    const raw = rawClient(redis, DB);
    expect(await raw.del('state:retrieval-proxy:stats:history')).toBe(1);
    raw.disconnect();
  });

  it('pushes filters into SQL with the Redis engine\'s meaning: typed, any-of, string[] membership, documentId and source', async () => {
    const app = await proxy(newSchema());
    for (const d of [docs.refunds, docs.shipping, docs.german]) expect((await ingest(app, d)).statusCode).toBe(201);
    const q = (filters: object) => search(app, { query: 'policy refund shipping', limit: 10, filters });
    expect(ids(await q({ team: 'billing' })).sort()).toEqual(['refund-policy', 'rueckgabe']);
    expect(ids(await q({ team: ['logistics', 'nobody'] }))).toEqual(['shipping']);
    expect(ids(await q({ tags: 'money' }))).toEqual(['refund-policy']);
    expect(ids(await q({ version: 1 })).sort()).toEqual(['rueckgabe', 'shipping']);
    expect(ids(await q({ version: '1' }))).toEqual([]);
    expect(ids(await q({ documentId: 'shipping' }))).toEqual(['shipping']);
    expect(ids(await q({ source: 'handbook/refunds.md', lang: 'en' }))).toEqual(['refund-policy']);
    const all = (await q({})).json<{ total: number }>();
    const limited = (await search(app, { query: 'policy refund shipping', limit: 1 })).json<{ total: number; results: unknown[] }>();
    expect(limited.results).toHaveLength(1);
    expect(limited.total).toBe(all.total);
    const strict = (await search(app, { query: 'refund within 30 days', limit: 10, scoreThreshold: 0.99 })).json<{ total: number; results: unknown[] }>();
    expect(strict.total).toBe(strict.results.length);
    expect(strict.total).toBeLessThan(all.total);
  });

  it('replaces a re-ingested document in one transaction: none of its old chunks survive', async () => {
    const app = await proxy(newSchema());
    const long = { id: 'doc', title: 'Long', text: Array.from({ length: 40 }, (_, i) => `Sentence ${i} about granite quarries.`).join(' '), chunkSize: 100, chunkOverlap: 0 };
    const first = (await ingest(app, long)).json<{ chunkCount: number }>();
    expect(first.chunkCount).toBeGreaterThan(5);
    expect((await ingest(app, { id: 'doc', title: 'Short', text: 'Only marble now.' })).statusCode).toBe(201);
    const doc = (await app.inject({ method: 'GET', url: '/api/v1/documents/doc' })).json<{ chunks: unknown[]; title: string }>();
    expect(doc.title).toBe('Short');
    expect(doc.chunks).toHaveLength(1);
    const res = (await search(app, { query: 'granite quarries', limit: 50 })).json<{ results: Array<{ text: string }>; total: number }>();
    expect(res.results.map((r) => r.text)).toEqual(['Only marble now.']);
    // The kept chunk count (an unfiltered search's total) followed the replacement, and a delete.
    expect(res.total).toBe(1);
    expect((await ingest(app, { id: 'other', title: 'Other', text: 'Slate roofs.' })).statusCode).toBe(201);
    expect((await app.inject({ method: 'DELETE', url: '/api/v1/documents/doc' })).statusCode).toBe(204);
    expect((await search(app, { query: 'granite', limit: 50 })).json<{ total: number }>().total).toBe(1);
  });

  it('serves no stale answer across replicas: an ingest through one is seen by the next search through the other', async () => {
    const schema = newSchema();
    const [a, b] = [await proxy(schema), await proxy(schema)];
    expect((await ingest(a, docs.shipping)).statusCode).toBe(201);
    expect(ids(await search(b, { query: 'refund within 30 days', limit: 5 }))).toEqual(['shipping']);
    expect((await ingest(a, docs.refunds)).statusCode).toBe(201);
    expect(ids(await search(b, { query: 'refund within 30 days', limit: 5 }))[0]).toBe('refund-policy');
  });

  it('refuses a model of another dimension, clearly, and leaves the index as it was', async () => {
    const schema = newSchema();
    const app = await proxy(schema);
    expect((await ingest(app, docs.shipping)).statusCode).toBe(201);
    const other = Fastify({ logger: false });
    other.get('/health', async () => ({ status: 'ok' }));
    other.post('/api/v1/embeddings', async (request) => {
      const input = (request.body as { input: string[] }).input;
      return { object: 'list', model: 'other-32', data: input.map((_, index) => ({ object: 'embedding', index, embedding: Array.from({ length: 32 }, () => 0.1) })), usage: { prompt_tokens: 1, total_tokens: 1 } };
    });
    const url = await other.listen({ port: 0, host: '127.0.0.1' });
    try {
      const wrong = await proxy(schema, {}, url);
      const put = await ingest(wrong, docs.refunds);
      expect(put.statusCode).toBe(409);
      expect(put.json().message).toMatch(/holds 64-dimension vectors \(model fake-bow-64\); model other-32 gives 32/);
      const query = await search(wrong, { query: 'anything' });
      expect(query.statusCode).toBe(409);
      expect((await app.inject({ method: 'GET', url: '/api/v1/documents' })).json<{ total: number }>().total).toBe(1);
    } finally {
      await other.close();
    }
  });

  it('migrates once when replicas boot together, and again not at all', async () => {
    const schema = newSchema();
    const booted = await Promise.all([proxy(schema), proxy(schema), proxy(schema)]);
    for (const app of booted) expect((await app.inject({ method: 'GET', url: '/ready' })).statusCode).toBe(200);
    const c = new pg.Client({ connectionString: DATABASE_URL });
    await c.connect();
    try {
      const { rows } = await c.query(`SELECT version FROM "${schema}".migrations`);
      expect(rows).toEqual([{ version: 1 }, { version: 2 }, { version: 3 }, { version: 4 }, { version: 5 }, { version: 6 }]);
    } finally {
      await c.end();
    }
  });

  it('builds the HNSW index with the configured graph, says which in GET /api/v1/index, and keeps a built one as it was', async () => {
    const schema = newSchema();
    const app = await proxy(schema, { RETRIEVAL_PG_HNSW_M: '8', RETRIEVAL_PG_HNSW_EF_CONSTRUCTION: '24', RETRIEVAL_PG_EF_SEARCH: '60' });
    const before = (await app.inject({ method: 'GET', url: '/api/v1/index' })).json();
    expect(before.hnsw).toEqual({ m: 8, efConstruction: 24, efSearch: 60, built: false });
    expect((await ingest(app, docs.shipping)).statusCode).toBe(201);
    const c = new pg.Client({ connectionString: DATABASE_URL });
    await c.connect();
    try {
      const { rows } = await c.query(`SELECT reloptions FROM pg_class WHERE oid = to_regclass($1)`, [`"${schema}".chunks_embedding_hnsw`]);
      expect(rows[0]?.reloptions).toEqual(['m=8', 'ef_construction=24']);
    } finally {
      await c.end();
    }
    expect((await app.inject({ method: 'GET', url: '/api/v1/index' })).json().hnsw).toEqual({ m: 8, efConstruction: 24, efSearch: 60, built: true });
    expect(ids(await search(app, { query: 'shipping' }))).toContain(docs.shipping.id);
    // Another replica configured otherwise reports the index as it was built, not its own setting.
    const other = await proxy(schema, { RETRIEVAL_PG_HNSW_M: '24', RETRIEVAL_PG_HNSW_EF_CONSTRUCTION: '96' });
    expect((await other.inject({ method: 'GET', url: '/api/v1/index' })).json().hnsw).toMatchObject({ m: 8, efConstruction: 24, built: true });
  });

  it('answers 503 when PostgreSQL does not answer, and is not ready; the cache and the rest stay up', async () => {
    const app = await proxy(newSchema(), { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/test', STATE_TIMEOUT_MS: '1000' });
    const res = await ingest(app, docs.shipping);
    expect(res.statusCode).toBe(503);
    expect(res.json().message).not.toMatch(/password/i);
    // No stamp was ever read, so there is no last known corpus to answer from.
    expect((await search(app, { query: 'x' })).statusCode).toBe(503);
    const ready = (await app.inject({ method: 'GET', url: '/ready' })).json<{ checks: Record<string, { ok: boolean }> }>();
    expect(ready.checks.index?.ok).toBe(false);
    expect((await app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
  });
});

describe('pgvector configuration', () => {
  it('refuses RETRIEVAL_INDEX=pgvector without DATABASE_URL, naming the variable', () => {
    expect(() => loadConfig({ RETRIEVAL_INDEX: 'pgvector' })).toThrow(ConfigError);
    expect(() => loadConfig({ RETRIEVAL_INDEX: 'pgvector' })).toThrow(/DATABASE_URL: is required with RETRIEVAL_INDEX=pgvector/);
    expect(() => loadConfig({ RETRIEVAL_INDEX: 'qdrant' })).toThrow(/RETRIEVAL_INDEX/);
  });

  it('refuses an HNSW graph pgvector would refuse, at boot and naming the variable', () => {
    expect(() => loadConfig({ RETRIEVAL_PG_HNSW_M: '32', RETRIEVAL_PG_HNSW_EF_CONSTRUCTION: '40' })).toThrow(/RETRIEVAL_PG_HNSW_EF_CONSTRUCTION: must be at least twice RETRIEVAL_PG_HNSW_M \(32\)/);
    expect(() => loadConfig({ RETRIEVAL_PG_HNSW_M: '1' })).toThrow(/RETRIEVAL_PG_HNSW_M/);
    expect(() => loadConfig({ RETRIEVAL_PG_HNSW_EF_CONSTRUCTION: '2000' })).toThrow(/RETRIEVAL_PG_HNSW_EF_CONSTRUCTION/);
    expect(loadConfig({ RETRIEVAL_PG_HNSW_M: '32', RETRIEVAL_PG_HNSW_EF_CONSTRUCTION: '128' })).toMatchObject({ RETRIEVAL_PG_HNSW_M: 32, RETRIEVAL_PG_HNSW_EF_CONSTRUCTION: 128 });
  });
});
