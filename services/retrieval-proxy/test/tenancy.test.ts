import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cache } from '@aicache/cache';
import { scanKeys, unlinkMatching, type TestRedis } from '@aicache/test-redis';
import { DocumentStore, type DocumentMeta } from '../src/domain/document-store.js';
import type { Embedder } from '../src/domain/embedder.js';
import { MIGRATIONS, PgVectorIndex, pgVectorAvailability } from '../src/domain/pgvector-index.js';
import { RedisRetrievalIndex, type RetrievalIndex } from '../src/domain/retrieval-index.js';
import { RetrievalService } from '../src/domain/retrieval-service.js';
import { vectorToBuffer } from '../src/domain/vectors.js';
import { DIMS, embed, testRedis } from './helpers.js';

/**
 * Tenancy in the domain, on both engines: ids per tenant, searches and their cached answers per tenant, and the data
 * stored before tenants existed read as the default tenant's.
 */
const DB = 11;
const DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

// Where PostgreSQL answers, pgvector.test.ts already fails when the extension is missing; here its absence skips.
const pgReady = (await pgVectorAvailability(DATABASE_URL)).vector;

const embedder: Embedder & { calls: number } = {
  calls: 0,
  async embed(inputs) {
    this.calls++;
    return { model: 'fake-bow-64', vectors: inputs.map(embed) };
  },
  ready: async () => true,
  close: async () => undefined,
};

let redis: TestRedis;
let raw: Redis;
const caches: Cache[] = [];
const closers: Array<() => Promise<void>> = [];
const schemas: string[] = [];

beforeAll(async () => {
  redis = await testRedis();
  raw = new Redis(redis.url, { db: DB, maxRetriesPerRequest: 1 });
});

afterAll(async () => {
  for (const close of closers) await close().catch(() => undefined);
  for (const cache of caches) await cache.close();
  if (schemas.length) {
    const c = new pg.Client({ connectionString: DATABASE_URL });
    await c.connect();
    for (const s of schemas) await c.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
    await c.end();
  }
  await unlinkMatching(raw, 'state:tenancy-*', 'tenancy-*');
  raw.disconnect();
  await redis.stop();
});

const unique = () => randomBytes(4).toString('hex');

function redisIndex(prefix: string): RetrievalIndex {
  return new RedisRetrievalIndex(new DocumentStore(raw, prefix, 5000));
}

function pgIndex(schema: string): PgVectorIndex {
  const index = new PgVectorIndex({ connectionString: DATABASE_URL, schema, efSearch: 40, timeoutMs: 10_000, poolSize: 2 });
  closers.push(() => index.close());
  return index;
}

const newSchema = () => {
  const s = `tenancy_${unique()}`;
  schemas.push(s);
  return s;
};

/** A cache of its own (service name `tenancy-<hex>`, on the test DB). */
function newCache(): Cache {
  const cache = new Cache({
    service: `tenancy-${unique()}`,
    categories: { search_results: { ttl: 600 }, context_bundles: { ttl: 600 } },
    client: raw,
    env: {},
  });
  caches.push(cache);
  return cache;
}

/** A service over `index` with a cache of its own, or `cache` (another replica of the same service). */
function service(index: RetrievalIndex, cache: Cache = newCache()) {
  const retrieval = new RetrievalService({
    index,
    embedder,
    searchCache: cache.category('search_results'),
    contextCache: cache.category('context_bundles'),
    model: '',
    maxChunksPerDocument: 100,
    ingestTimeoutMs: 5000,
  });
  return { retrieval, cache };
}

/** The error a call fails with, as a client would see it. */
async function failure(p: Promise<unknown>): Promise<{ statusCode?: number; code?: string; message: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as { statusCode?: number; code?: string; message: string };
    return { statusCode: e.statusCode, code: e.code, message: e.message } as { statusCode?: number; code?: string; message: string };
  }
  throw new Error('expected a failure');
}

/** Each engine: where an index lives (a key prefix, a schema), and an index opened there (two opened at one place are two replicas). */
const engines = [
  { name: 'redis', ready: true, place: () => `state:tenancy-${unique()}`, open: redisIndex },
  { name: 'pgvector', ready: pgReady, place: newSchema, open: pgIndex },
].map((e) => ({ ...e, make: () => e.open(e.place()) }));

for (const engine of engines) {
  describe.skipIf(!engine.ready)(`two tenants on the ${engine.name} engine`, () => {
    it('keeps ids per tenant: the same id in both, read, listed and deleted each on its own side', async () => {
      const { retrieval } = service(engine.make());
      await retrieval.ingest('acme', { id: 'doc-1', title: 'Acme one', text: 'Acme sells anvils and rockets.' });
      await retrieval.ingest('globex', { id: 'doc-1', title: 'Globex one', text: 'Globex builds volcano lairs.' });
      await retrieval.ingest('globex', { id: 'doc-2', title: 'Globex two', text: 'Globex hires henchmen.' });

      expect((await retrieval.get('acme', 'doc-1')).title).toBe('Acme one');
      expect((await retrieval.get('globex', 'doc-1')).title).toBe('Globex one');
      expect((await retrieval.get('globex', 'doc-1')).chunks.map((c) => c.text)).toEqual(['Globex builds volcano lairs.']);

      const acme = await retrieval.list('acme', 0, 10);
      const globex = await retrieval.list('globex', 0, 10);
      expect([acme.total, acme.documents.map((d) => d.id)]).toEqual([1, ['doc-1']]);
      expect([globex.total, globex.documents.map((d) => d.id)]).toEqual([2, ['doc-1', 'doc-2']]);
      expect((await retrieval.list('initech', 0, 10)).total).toBe(0);

      // Another tenant's id is an unknown id: the same error before and after the owner deletes it.
      const foreign = await failure(retrieval.get('acme', 'doc-2'));
      expect(foreign).toMatchObject({ statusCode: 404, code: 'NOT_FOUND' });
      expect(await failure(retrieval.delete('acme', 'doc-2'))).toEqual(foreign);
      await retrieval.delete('globex', 'doc-2');
      expect(await failure(retrieval.get('acme', 'doc-2'))).toEqual(foreign);
      expect(await failure(retrieval.get('globex', 'doc-2'))).toEqual(foreign);

      await retrieval.delete('acme', 'doc-1');
      expect((await failure(retrieval.get('acme', 'doc-1'))).statusCode).toBe(404);
      expect((await retrieval.get('globex', 'doc-1')).title).toBe('Globex one');
      expect((await retrieval.list('acme', 0, 10)).total).toBe(0);
      expect((await retrieval.list('globex', 0, 10)).total).toBe(1);
    });

    it("searches only the tenant's chunks, k of them even when another tenant's rank higher", async () => {
      const { retrieval } = service(engine.make());
      // Globex's documents are closer to the query than any of Acme's: a top k taken before the tenant filter
      // would leave Acme with none.
      for (let i = 0; i < 12; i++) {
        await retrieval.ingest('globex', { id: `g-${i}`, title: `g${i}`, text: `granite quarry stone ${i}` });
      }
      for (let i = 0; i < 8; i++) {
        await retrieval.ingest('acme', { id: `a-${i}`, title: `a${i}`, text: `granite blocks for building number ${i} of many` });
      }
      const search = async (tenant: string, body: object) =>
        JSON.parse((await retrieval.search(tenant, { query: 'granite quarry stone', ...body })).body.toString()) as {
          results: Array<{ documentId: string }>;
          total: number;
        };
      const acme = await search('acme', { limit: 5 });
      expect(acme.results).toHaveLength(5);
      expect(acme.results.every((r) => r.documentId.startsWith('a-'))).toBe(true);
      expect(acme.total).toBe(8);
      const globex = await search('globex', { limit: 5 });
      expect(globex.results).toHaveLength(5);
      expect(globex.results.every((r) => r.documentId.startsWith('g-'))).toBe(true);
      expect(globex.total).toBe(12);
      // Filters apply within the tenant: another tenant's id is not found, nor counted.
      expect(await search('acme', { limit: 5, filters: { documentId: 'g-1' } })).toMatchObject({ results: [], total: 0 });
      expect((await search('acme', { limit: 50, filters: { documentId: ['a-1', 'g-1'] } })).results.map((r) => r.documentId)).toEqual(['a-1']);
      expect(await search('initech', { limit: 5 })).toMatchObject({ results: [], total: 0 });

      const context = JSON.parse((await retrieval.context('acme', { query: 'granite quarry stone', limit: 3 })).body.toString()) as {
        sections: Array<{ citation: { documentId: string } }>;
      };
      expect(context.sections).toHaveLength(3);
      expect(context.sections.every((s) => s.citation.documentId.startsWith('a-'))).toBe(true);
    });

    it("caches each tenant's answer under its own key: never served to the other, dropped by the tenant's own writes only", async () => {
      const { retrieval, cache } = service(engine.make());
      await retrieval.ingest('acme', { id: 'doc-1', title: 'Acme', text: 'Refunds within 30 days at Acme.' });
      await retrieval.ingest('globex', { id: 'doc-1', title: 'Globex', text: 'Refunds never at Globex.' });

      const first = await retrieval.search('acme', { query: 'refunds' });
      expect(first.hit).toBe(false);
      expect((await retrieval.search('acme', { query: 'refunds' })).hit).toBe(true);
      const other = await retrieval.search('globex', { query: 'refunds' });
      expect(other.hit).toBe(false);
      expect(other.body.toString()).toContain('Refunds never at Globex.');
      expect(other.body.toString()).not.toContain('Acme');
      const keys = (await scanKeys(raw, `${cache.service}:search_results:*`)).map((k) => k.split(':').slice(2, 4).join(':')).sort();
      expect(keys).toEqual(['q:acme', 'q:globex']);

      expect((await retrieval.context('acme', { query: 'refunds' })).hit).toBe(false);
      expect((await retrieval.context('globex', { query: 'refunds' })).hit).toBe(false);
      expect((await retrieval.context('globex', { query: 'refunds' })).hit).toBe(true);

      // A tenant's answers are keyed by its own version: another tenant's ingest and delete leave them cached...
      await retrieval.ingest('globex', { id: 'doc-2', title: 'More', text: 'Refunds by cheque.' });
      expect((await retrieval.search('acme', { query: 'refunds' })).hit).toBe(true);
      expect((await retrieval.context('acme', { query: 'refunds' })).hit).toBe(true);
      const globex = await retrieval.search('globex', { query: 'refunds' });
      expect(globex.hit).toBe(false);
      expect(globex.body.toString()).toContain('Refunds by cheque.');
      await retrieval.delete('globex', 'doc-2');
      expect((await retrieval.search('acme', { query: 'refunds' })).hit).toBe(true);
      expect((await retrieval.search('globex', { query: 'refunds' })).body.toString()).not.toContain('Refunds by cheque.');
      // ...while its own write drops them, as a delete does.
      await retrieval.ingest('acme', { id: 'doc-2', title: 'Acme more', text: 'Refunds paid in anvils.' });
      const after = await retrieval.search('acme', { query: 'refunds' });
      expect(after.hit).toBe(false);
      expect(after.body.toString()).toContain('Refunds paid in anvils.');
      expect((await retrieval.search('acme', { query: 'refunds' })).hit).toBe(true);
      await retrieval.delete('acme', 'doc-2');
      const deleted = await retrieval.search('acme', { query: 'refunds' });
      expect(deleted.hit).toBe(false);
      expect(deleted.body.toString()).not.toContain('anvils');
    });

    it("serves no replica a tenant's answer from before that tenant's write through another replica", async () => {
      // Two replicas: two indexes over the same store, two services over the same cache.
      const place = engine.place();
      const { retrieval: a, cache } = service(engine.open(place));
      const { retrieval: b } = service(engine.open(place), cache);
      await a.ingest('acme', { id: 'doc-1', title: 'Acme', text: 'Shipping takes two days.' });
      await a.ingest('globex', { id: 'doc-1', title: 'Globex', text: 'Shipping by zeppelin.' });
      for (const r of [a, b]) await r.search('acme', { query: 'shipping' });
      expect((await b.search('acme', { query: 'shipping' })).hit).toBe(true);
      await b.ingest('globex', { id: 'doc-2', title: 'Globex more', text: 'Shipping by submarine.' });
      expect((await a.search('acme', { query: 'shipping' })).hit).toBe(true);
      await b.ingest('acme', { id: 'doc-2', title: 'Acme more', text: 'Shipping abroad takes a week.' });
      for (const r of [a, b]) {
        const answer = await r.search('acme', { query: 'shipping', limit: 5 });
        expect(answer.body.toString()).toContain('Shipping abroad takes a week.');
        expect(answer.body.toString()).not.toContain('zeppelin');
      }
    });
  });
}

const legacyMeta = (id: string): DocumentMeta => ({
  id,
  title: `Old ${id}`,
  metadata: { era: 'before' },
  createdAt: new Date(0).toISOString(),
  chunkCount: 1,
  contentHash: '',
  model: 'fake-bow-64',
  dimensions: DIMS,
  chunkSize: 800,
  chunkOverlap: 120,
});
const LEGACY_TEXT = 'Legacy warranty terms for old customers.';

/** After an upgrade: the old document is the default tenant's, and only the default tenant's. */
async function expectLegacyReadable(index: RetrievalIndex) {
  const { retrieval } = service(index);
  expect((await retrieval.get('default', 'old-1')).chunks.map((c) => c.text)).toEqual([LEGACY_TEXT]);
  expect((await retrieval.list('default', 0, 10)).documents.map((d) => d.id)).toEqual(['old-1']);
  const found = JSON.parse((await retrieval.search('default', { query: 'legacy warranty' })).body.toString()) as {
    results: Array<{ documentId: string }>;
    total: number;
  };
  expect(found.results.map((r) => r.documentId)).toEqual(['old-1']);
  expect(found.total).toBe(1);
  expect((await failure(retrieval.get('acme', 'old-1'))).statusCode).toBe(404);
  expect((await retrieval.list('acme', 0, 10)).total).toBe(0);
  // Both tenants write on from there, the same id included.
  await retrieval.ingest('acme', { id: 'old-1', title: 'Acme old-1', text: 'Acme warranty.' });
  await retrieval.ingest('default', { id: 'new-1', title: 'New', text: 'New default document.' });
  expect((await retrieval.get('default', 'old-1')).title).toBe('Old old-1');
  expect((await retrieval.get('acme', 'old-1')).title).toBe('Acme old-1');
  expect((await retrieval.list('default', 0, 10)).total).toBe(2);
  return retrieval;
}

describe('data stored before tenants', () => {
  it('Redis engine: documents in the old layout are the default tenant\'s, and the layout stays as it was', async () => {
    const prefix = `state:tenancy-${unique()}`;
    // The layout of a release without tenants.
    await raw.hset(`${prefix}:doc:old-1`, {
      meta: JSON.stringify(legacyMeta('old-1')),
      't:0': LEGACY_TEXT,
      'v:0': vectorToBuffer(embed(LEGACY_TEXT)),
    });
    await raw.zadd(`${prefix}:docs`, 0, 'old-1');
    await raw.set(`${prefix}:corpus_version`, '1');
    await raw.set(`${prefix}:corpus_epoch`, '00000000000000aa');

    await expectLegacyReadable(redisIndex(prefix));
    // The default tenant's keys are where they were; the other tenant's sit under `t:<tenant>:`, listed in `tenants`.
    expect((await scanKeys(raw, `${prefix}:*`)).map((k) => k.slice(prefix.length + 1)).sort()).toEqual([
      'corpus_epoch',
      'corpus_model',
      'corpus_version',
      'doc:new-1',
      'doc:old-1',
      'docs',
      't:acme:doc:old-1',
      't:acme:docs',
      't:acme:written_at',
      'tenants',
      'written_at',
    ]);
    // Each tenant's version is the corpus version of its last write (acme's ingest, then the default tenant's).
    expect(await raw.mget(`${prefix}:t:acme:written_at`, `${prefix}:written_at`, `${prefix}:corpus_version`)).toEqual(['2', '3', '3']);
    expect(await raw.smembers(`${prefix}:tenants`)).toEqual(['acme']);
    // A fresh process loads every tenant's documents.
    const fresh = redisIndex(prefix);
    expect((await fresh.warmUp()).documents).toBe(3);
    const stamp = await fresh.stamp();
    expect((await fresh.search('acme', embed('warranty'), { limit: 10, filters: {} }, stamp)).hits.map((h) => h.meta.title)).toEqual(['Acme old-1']);
  });

  it.skipIf(!pgReady)('pgvector engine: rows from before migration 3 are the default tenant\'s', async () => {
    const schema = newSchema();
    const s = `"${schema}"`;
    const c = new pg.Client({ connectionString: DATABASE_URL });
    await c.connect();
    try {
      // The schema as a release without tenants left it: migrations 1 and 2, and one ingested document.
      await c.query(`CREATE SCHEMA ${s}`);
      await c.query(`CREATE TABLE ${s}.migrations (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`);
      for (const v of [1, 2]) {
        await c.query(MIGRATIONS[v - 1]!(s));
        await c.query(`INSERT INTO ${s}.migrations (version) VALUES ($1)`, [v]);
      }
      await c.query(`ALTER TABLE ${s}.chunks ALTER COLUMN embedding TYPE vector(${DIMS})`);
      await c.query(`CREATE INDEX chunks_embedding_hnsw ON ${s}.chunks USING hnsw (embedding vector_cosine_ops)`);
      await c.query(`UPDATE ${s}.corpus SET dimensions = $1, model = 'fake-bow-64', version = 1, chunks = 1`, [DIMS]);
      const meta = legacyMeta('old-1');
      await c.query(`INSERT INTO ${s}.documents (id, meta, source, metadata) VALUES ($1, $2, NULL, $3)`, ['old-1', JSON.stringify(meta), JSON.stringify(meta.metadata)]);
      await c.query(`INSERT INTO ${s}.chunks (document_id, chunk_index, text, embedding) VALUES ('old-1', 0, $1, $2)`, [
        LEGACY_TEXT,
        `[${Array.from(embed(LEGACY_TEXT)).join(',')}]`,
      ]);

      await expectLegacyReadable(pgIndex(schema));

      expect((await c.query(`SELECT version FROM ${s}.migrations ORDER BY version`)).rows).toEqual([{ version: 1 }, { version: 2 }, { version: 3 }, { version: 4 }, { version: 5 }, { version: 6 }]);
      const rows = await c.query(`SELECT tenant, id FROM ${s}.documents ORDER BY tenant, id`);
      expect(rows.rows).toEqual([
        { tenant: 'acme', id: 'old-1' },
        { tenant: 'default', id: 'new-1' },
        { tenant: 'default', id: 'old-1' },
      ]);
      // Each tenant's version is the corpus version of its last write (acme's ingest, then the default tenant's).
      expect((await c.query(`SELECT tenant, chunks::int AS chunks, version::int AS version FROM ${s}.tenants ORDER BY tenant`)).rows).toEqual([
        { tenant: 'acme', chunks: 1, version: 2 },
        { tenant: 'default', chunks: 2, version: 3 },
      ]);
    } finally {
      await c.end();
    }
  });
});
