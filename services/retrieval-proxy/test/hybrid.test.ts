import { createHash, randomBytes } from 'node:crypto';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServiceApp } from '@aicache/service-kit';
import { ConfigError } from '@aicache/service-kit';
import type { TestRedis } from '@aicache/test-redis';
import { loadConfig } from '../src/config.js';
import type { DocumentMeta } from '../src/domain/document-store.js';
import type { Metadata } from '../src/domain/filters.js';
import { PgVectorIndex, pgVectorAvailability } from '../src/domain/pgvector-index.js';
import { DIMS, embed, makeApp, pgQuery, startFakeWorker, testConfig, testRedis, type FakeWorker } from './helpers.js';

/**
 * Hybrid ranking on the pgvector engine (full-text rank fused with vector rank) against the machine's PostgreSQL:
 * the full-text column's migration of an existing index, tenant and filters, an exact term the vector ranking misses,
 * the re-embed switch, and the Redis engine's refusal. Each test uses a schema of its own.
 */
const DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const DB = 9;

const pgState = await pgVectorAvailability(DATABASE_URL);
if (pgState.reason) console.warn(`hybrid ranking tests skipped: ${pgState.reason}`);

const schemas: string[] = [];
const newSchema = () => {
  const s = `hybrid_${randomBytes(6).toString('hex')}`;
  schemas.push(s);
  return s;
};

let redis: TestRedis;
let worker: FakeWorker;
const apps: ServiceApp[] = [];
const indexes: PgVectorIndex[] = [];

async function proxy(extra: Record<string, string> = {}): Promise<ServiceApp> {
  const app = await makeApp(testConfig(redis, DB, worker.url, extra));
  apps.push(app);
  return app;
}
const pgProxy = (schema: string, extra: Record<string, string> = {}) => proxy({ RETRIEVAL_INDEX: 'pgvector', DATABASE_URL, RETRIEVAL_PG_SCHEMA: schema, ...extra });

function pgIndex(schema: string): PgVectorIndex {
  const index = new PgVectorIndex({ connectionString: DATABASE_URL, schema, efSearch: 40, timeoutMs: 10_000, poolSize: 2 });
  indexes.push(index);
  return index;
}

const sql = <T extends pg.QueryResultRow>(text: string, params: unknown[] = []) => pgQuery<T>(DATABASE_URL, text, params);

type Results = { results: Array<{ documentId: string; score: number }>; total: number };
const ingest = (app: ServiceApp, body: object) => app.inject({ method: 'POST', url: '/api/v1/documents', payload: body });
const search = (app: ServiceApp, body: object) => app.inject({ method: 'POST', url: '/api/v1/search', payload: body });
const ids = (res: { json: () => Results }) => res.json().results.map((r) => r.documentId);

/** One chunk per document, stored straight into the index (the domain-level tests). */
function stored(id: string, text: string, metadata: Metadata = {}, model = 'fake-bow-64') {
  const vector = embed(text);
  const meta: DocumentMeta = {
    id,
    title: id,
    metadata,
    createdAt: new Date().toISOString(),
    chunkCount: 1,
    contentHash: createHash('sha256').update(text).digest('hex'),
    model,
    dimensions: vector.length,
    chunkSize: 800,
    chunkOverlap: 100,
  };
  return { meta, chunks: [{ text, vector }] };
}

/** The test embedder's bucket and sign of a word (helpers.embed): words sharing both embed alike. */
function bucketOf(word: string): number[] {
  return Array.from(embed(word)).map(Math.sign);
}

/**
 * Words the test embedder cannot tell from `word`: the same bucket with the same sign. A passage made of one of them
 * is, to the vector ranking, a perfect match for a query of `word` alone: the way a rare identifier (an error code, a
 * part number) gets lost in an embedding that has never seen it.
 */
function lookalikes(word: string, n: number): string[] {
  const want = bucketOf(word).join();
  const out: string[] = [];
  for (let i = 0; out.length < n; i++) if (bucketOf(`quartz${i}`).join() === want) out.push(`quartz${i}`);
  return out;
}

const CODE = 'e4021';
const CODE_PASSAGE = {
  id: 'upload-errors',
  title: 'Upload errors',
  text: 'Error E4021 means the upload token expired before the last part arrived: sign in again and restart the upload from the first part.',
};

describe.skipIf(!pgState.answers)('hybrid ranking on the pgvector engine', () => {
  beforeAll(async () => {
    expect(pgState.reason, pgState.reason).toBe('');
    redis = await testRedis();
    worker = await startFakeWorker();
  });

  afterAll(async () => {
    for (const app of apps) await app.close();
    for (const index of indexes) await index.close().catch(() => undefined);
    await worker?.close();
    for (const s of schemas) await sql(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
    await redis?.stop();
  });

  it('finds a passage by an exact term the vector ranking alone misses, caches it apart, and keeps cosine scores', async () => {
    const app = await pgProxy(newSchema());
    expect((await ingest(app, CODE_PASSAGE)).statusCode).toBe(201);
    for (const [i, word] of lookalikes(CODE, 4).entries()) {
      expect((await ingest(app, { id: `note-${i}`, title: `Note ${i}`, text: `${word} ${word}` })).statusCode).toBe(201);
    }
    const vector = await search(app, { query: 'E4021', limit: 3 });
    expect(vector.statusCode).toBe(200);
    expect(ids(vector)).not.toContain(CODE_PASSAGE.id);

    const hybrid = await search(app, { query: 'E4021', limit: 3, hybrid: true });
    expect(hybrid.statusCode, hybrid.body).toBe(200);
    expect(hybrid.headers['x-cache']).toBe('miss');
    expect(ids(hybrid)[0]).toBe(CODE_PASSAGE.id);
    expect(hybrid.json().total).toBe(vector.json().total);
    // The score is still the cosine similarity: the one the vector ranking gives the same chunk.
    const all = (await search(app, { query: 'E4021', limit: 50 })).json<Results>();
    expect(hybrid.json().results[0]!.score).toBeCloseTo(all.results.find((r) => r.documentId === CODE_PASSAGE.id)!.score, 6);

    const again = await search(app, { query: 'e4021 ', limit: 3, hybrid: true });
    expect(again.headers['x-cache']).toBe('hit');
    expect(again.json()).toEqual(hybrid.json());
    const vectorAgain = await search(app, { query: 'E4021', limit: 3, hybrid: false });
    expect(vectorAgain.headers['x-cache']).toBe('hit');
    expect(vectorAgain.json()).toEqual(vector.json());

    const context = await app.inject({ method: 'POST', url: '/api/v1/context', payload: { query: 'E4021', limit: 1, hybrid: true } });
    expect(context.statusCode).toBe(200);
    expect(context.json().sections[0].citation.documentId).toBe(CODE_PASSAGE.id);
  });

  it('ranks hybrid by default under RETRIEVAL_HYBRID, and a request may still ask for the vector ranking', async () => {
    const schema = newSchema();
    const app = await pgProxy(schema, { RETRIEVAL_HYBRID: 'true' });
    expect((await ingest(app, CODE_PASSAGE)).statusCode).toBe(201);
    for (const [i, word] of lookalikes(CODE, 4).entries()) expect((await ingest(app, { id: `note-${i}`, title: 'Note', text: word })).statusCode).toBe(201);
    expect(ids(await search(app, { query: 'E4021', limit: 3 }))[0]).toBe(CODE_PASSAGE.id);
    expect(ids(await search(app, { query: 'E4021', limit: 3, hybrid: false }))).not.toContain(CODE_PASSAGE.id);
  });

  it('keeps to the tenant and the filters in both rankings', async () => {
    const index = pgIndex(newSchema());
    await index.put('acme', stored('acme-billing', 'Invoice export failed with E4021 for the billing team.', { team: 'billing' }));
    await index.put('acme', stored('acme-billing-2', 'Billing runs on the first day of each month.', { team: 'billing' }));
    await index.put('acme', stored('acme-ops', 'Deploy stopped with E4021 on the ops cluster.', { team: 'ops' }));
    await index.put('globex', stored('globex-billing', 'E4021 E4021 E4021 billing', { team: 'billing' }));
    const stamp = await index.stamp();
    const q = (tenant: string, filters: Record<string, string>) =>
      index.search(tenant, embed(CODE), { limit: 10, filters, hybridText: CODE }, stamp).then((o) => ({ ids: o.hits.map((h) => h.meta.id), total: o.total }));

    const billing = await q('acme', { team: 'billing' });
    expect(billing.ids[0]).toBe('acme-billing');
    expect(billing.ids.sort()).toEqual(['acme-billing', 'acme-billing-2']);
    expect(billing.total).toBe(2);
    expect((await q('acme', { team: 'ops' })).ids).toEqual(['acme-ops']);
    expect((await q('acme', {})).ids.sort()).toEqual(['acme-billing', 'acme-billing-2', 'acme-ops']);
    expect((await q('globex', {})).ids).toEqual(['globex-billing']);
    expect((await q('initech', {})).ids).toEqual([]);
    // A score threshold holds for the full-text ranking too: no chunk below it comes back through the words.
    const strict = await index.search('acme', embed(CODE), { limit: 10, filters: {}, hybridText: CODE, scoreThreshold: 0.99 }, stamp);
    expect(strict.hits.every((h) => h.score >= 0.99)).toBe(true);
    expect(strict.hits.map((h) => h.meta.id)).not.toContain('acme-ops');
  });

  it('matches full text on every word of the query, as a search box does (`or` for any): a question the passage does not hold word for word ranks as the vector ranking does', async () => {
    const index = pgIndex(newSchema());
    await index.put('default', stored(CODE_PASSAGE.id, CODE_PASSAGE.text));
    for (const [i, word] of lookalikes(CODE, 4).entries()) await index.put('default', stored(`note-${i}`, `${word} ${word}`));
    const stamp = await index.stamp();
    const ranked = async (text: string, hybrid: boolean) =>
      (await index.search('default', embed(text), { limit: 5, filters: {}, ...(hybrid ? { hybridText: text } : {}) }, stamp)).hits.map((h) => h.meta.id);
    // 'wifi' is in no passage: no full-text match, the vector ranking as it is (the passage last of five).
    expect(await ranked('e4021 wifi', true)).toEqual(await ranked('e4021 wifi', false));
    expect((await ranked('e4021 wifi', false))[0]).not.toBe(CODE_PASSAGE.id);
    expect((await ranked('e4021 or wifi', true))[0]).toBe(CODE_PASSAGE.id);
    expect((await ranked('"token expired" e4021', true))[0]).toBe(CODE_PASSAGE.id);
    expect((await ranked('"expired token" e4021', true))[0]).not.toBe(CODE_PASSAGE.id);
  });

  it('migrates an index made before the full-text column in place without rewriting it; a re-embed fills the full text of what was stored before', async () => {
    const schema = newSchema();
    const s = `"${schema}"`;
    const before = pgIndex(schema);
    await before.put('default', stored('upload-errors', CODE_PASSAGE.text));
    await before.put('default', stored('notes', lookalikes(CODE, 1)[0]!));
    await before.reembed.claim({ job: 'job-1', model: 'fake-bow-64-v2', dimensions: DIMS });
    await before.close();
    // As the release before migration 5 left it: no full-text column on either table, a re-embed's staging table made
    // (and none of the migrations after it).
    await sql(
      `ALTER TABLE ${s}.chunks DROP COLUMN tsv; ALTER TABLE ${s}.chunks_next DROP COLUMN tsv; ALTER TABLE ${s}.tenants DROP COLUMN version; ` +
        `DELETE FROM ${s}.migrations WHERE version >= 5`,
    );
    expect(await sql(`SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND indexname LIKE '%tsv%'`, [schema])).toEqual([]);

    const fileOf = async () => (await sql<{ f: string }>(`SELECT pg_relation_filenode('${schema}.chunks'::regclass)::text AS f`))[0]!.f;
    const fileBefore = await fileOf();
    const after = pgIndex(schema);
    await after.migrate();
    // Not rewritten (the table's file is the same): its HNSW index was not rebuilt either.
    expect(await fileOf()).toBe(fileBefore);
    expect(await sql(`SELECT version FROM ${s}.migrations WHERE version = 5`)).toEqual([{ version: 5 }]);
    const columns = await sql<{ table_name: string }>(`SELECT table_name FROM information_schema.columns WHERE table_schema = $1 AND column_name = 'tsv' ORDER BY 1`, [schema]);
    expect(columns.map((r) => r.table_name)).toEqual(['chunks', 'chunks_next']);
    const hybrid = async (stampModel?: string) => {
      const stamp = await after.stamp();
      if (stampModel) expect(stamp.model).toBe(stampModel);
      return (await after.search('default', embed(CODE), { limit: 1, filters: {}, hybridText: CODE }, stamp)).hits.map((h) => h.meta.id);
    };
    // Chunks stored before have no full text yet: a hybrid search ranks them as the vector search does.
    const vectorTop = await after.search('default', embed(CODE), { limit: 1, filters: {} }, await after.stamp()).then((o) => o.hits.map((h) => h.meta.id));
    expect(vectorTop).toEqual(['notes']);
    expect(await hybrid()).toEqual(vectorTop);

    // The re-embed started before the upgrade goes on and switches: it writes every chunk's full text, and the table
    // it puts in place of chunks has it.
    const refs = await after.reembed.refs();
    for (const d of await after.reembed.load('job-1', refs)) expect(await after.reembed.stage('job-1', d.tenant, d.meta, 'fake-bow-64-v2', d.texts.map(embed))).toBe(1);
    await after.reembed.settle('job-1');
    expect((await after.reembed.switchModel('job-1')).outcome).toBe('switched');
    expect(await hybrid('fake-bow-64-v2')).toEqual(['upload-errors']);
    const tsvIndexes = await sql<{ tablename: string; indexname: string }>(`SELECT tablename, indexname FROM pg_indexes WHERE schemaname = $1 AND indexname LIKE '%tsv%'`, [schema]);
    expect(tsvIndexes).toEqual([{ tablename: 'chunks', indexname: 'chunks_tsv' }]);

    // A re-embed started now stages into a table with the column from the start, and its switch keeps it too.
    await after.reembed.claim({ job: 'job-2', model: 'fake-bow-64-v3', dimensions: DIMS });
    for (const d of await after.reembed.load('job-2', await after.reembed.refs())) await after.reembed.stage('job-2', d.tenant, d.meta, 'fake-bow-64-v3', d.texts.map(embed));
    await after.reembed.settle('job-2');
    expect((await after.reembed.switchModel('job-2')).outcome).toBe('switched');
    expect(await hybrid('fake-bow-64-v3')).toEqual(['upload-errors']);
    expect(await sql(`SELECT tablename, indexname FROM pg_indexes WHERE schemaname = $1 AND indexname LIKE '%tsv%'`, [schema])).toEqual([{ tablename: 'chunks', indexname: 'chunks_tsv' }]);
    // New writes after the switch are found by their words.
    await after.put('default', stored('late', 'E4021 also shows when the clock of the uploading machine is far off.', {}, 'fake-bow-64-v3'));
    const late = await after.search('default', embed(CODE), { limit: 2, filters: {}, hybridText: CODE }, await after.stamp());
    expect(late.hits.map((h) => h.meta.id).sort()).toEqual(['late', 'upload-errors']);
  });

  it('refuses hybrid ranking on the Redis engine: 400 per request, and RETRIEVAL_HYBRID at boot', async () => {
    const app = await proxy();
    for (const url of ['/api/v1/search', '/api/v1/context']) {
      const res = await app.inject({ method: 'POST', url, payload: { query: 'E4021', hybrid: true } });
      expect(res.statusCode).toBe(400);
      expect(res.json().message).toMatch(/hybrid ranking needs the pgvector engine \(RETRIEVAL_INDEX=pgvector\)/);
    }
    expect(() => loadConfig({ RETRIEVAL_HYBRID: 'true' })).toThrow(ConfigError);
    expect(() => loadConfig({ RETRIEVAL_HYBRID: 'true' })).toThrow(/RETRIEVAL_HYBRID: needs RETRIEVAL_INDEX=pgvector/);
    expect(loadConfig({ RETRIEVAL_HYBRID: 'true', RETRIEVAL_INDEX: 'pgvector', DATABASE_URL })).toMatchObject({ RETRIEVAL_HYBRID: true });
  });
});
