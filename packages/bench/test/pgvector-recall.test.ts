import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { PgVectorIndex, pgVectorAvailability } from '@aicache/retrieval-proxy/dist/domain/pgvector-index.js';
import { lowRankVectors } from '../src/synthetic.js';
import type { DocumentMeta } from '@aicache/retrieval-proxy/dist/domain/document-store.js';

/**
 * HNSW against exact search on the same vectors: the index must find what a full scan finds. The vectors are
 * low-rank (as text embeddings are: a few hundred directions carry most of the variance), not uniform noise.
 */
const DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const DIMS = 384;
const RANK = 32;
const DOCS = 60;
const CHUNKS = 100;
const QUERIES = 100;

const schema = `recall_${randomBytes(6).toString('hex')}`;
/** Every vector and query of this file, from one low-rank space (the tests run in order and draw in turn). */
const vector = lowRankVectors(DIMS, RANK, 42);
const index = new PgVectorIndex({ connectionString: DATABASE_URL, schema, efSearch: 40, timeoutMs: 30_000, poolSize: 2 });

afterAll(async () => {
  await index.close();
  const c = new pg.Client({ connectionString: DATABASE_URL });
  await c.connect();
  await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await c.end();
});

describe.skipIf(!(await pgVectorAvailability(DATABASE_URL)).answers)('HNSW recall (pgvector engine)', () => {
  it(`finds >= 95 % of the exact top 10 over ${DOCS * CHUNKS} low-rank ${DIMS}-dimension vectors`, async () => {
    for (let d = 0; d < DOCS; d++) {
      const meta: DocumentMeta = {
        id: `doc-${d}`, title: `doc ${d}`, metadata: {}, createdAt: new Date(0).toISOString(), chunkCount: CHUNKS,
        contentHash: '', model: 'synthetic', dimensions: DIMS, chunkSize: 800, chunkOverlap: 0,
      };
      await index.put('default', { meta, chunks: Array.from({ length: CHUNKS }, (_, i) => ({ text: `${d}/${i}`, vector: vector() })) });
    }

    const c = new pg.Client({ connectionString: DATABASE_URL });
    await c.connect();
    let found = 0;
    try {
      // As autovacuum would soon after a load: without statistics the planner takes the tenant filter for a selective
      // one and ranks the tenant's rows exactly, which would make this a test of exact search against itself.
      await c.query(`ANALYZE "${schema}".chunks`);
      await c.query(`ANALYZE "${schema}".documents`);
      await c.query('SET enable_indexscan = off');
      for (let q = 0; q < QUERIES; q++) {
        const query = vector();
        const { rows } = await c.query<{ text: string }>(`SELECT text FROM "${schema}".chunks ORDER BY embedding <=> $1 LIMIT 10`, [`[${Array.from(query).join(',')}]`]);
        const exact = new Set(rows.map((r) => r.text));
        const approx = await index.search('default', query, { limit: 10, filters: {} });
        found += approx.hits.filter((h) => exact.has(h.text)).length;
      }
      const plan = await c.query(`EXPLAIN SELECT text FROM "${schema}".chunks ORDER BY embedding <=> '[${new Array(DIMS).fill(0.1).join(',')}]' LIMIT 10`);
      await c.query('SET enable_indexscan = on');
      // The search's own shape: the tenant's chunks only.
      const indexed = await c.query(
        `EXPLAIN SELECT text FROM "${schema}".chunks WHERE tenant = 'default' ORDER BY embedding <=> '[${new Array(DIMS).fill(0.1).join(',')}]' LIMIT 10`,
      );
      // The comparison is between two different plans: a full scan and the HNSW index.
      expect(JSON.stringify(plan.rows)).not.toMatch(/chunks_embedding_hnsw/);
      expect(JSON.stringify(indexed.rows)).toMatch(/chunks_embedding_hnsw/);
    } finally {
      await c.end();
    }
    const recall = found / (QUERIES * 10);
    console.log(`HNSW recall@10 vs exact: ${recall.toFixed(3)} (${DOCS * CHUNKS} vectors, ef_search 40)`);
    expect(recall).toBeGreaterThanOrEqual(0.95);
  }, 120_000);

  it(`finds >= 95 % of a tenant's exact top 10 when another tenant holds as many vectors in the same index`, async () => {
    // The first test's vectors are tenant 'default''s; as many again of another tenant's, drawn from the same space.
    for (let d = 0; d < DOCS; d++) {
      const meta: DocumentMeta = {
        id: `doc-${d}`, title: `other ${d}`, metadata: {}, createdAt: new Date(0).toISOString(), chunkCount: CHUNKS,
        contentHash: '', model: 'synthetic', dimensions: DIMS, chunkSize: 800, chunkOverlap: 0,
      };
      await index.put('other', { meta, chunks: Array.from({ length: CHUNKS }, (_, i) => ({ text: `other ${d}/${i}`, vector: vector() })) });
    }
    const c = new pg.Client({ connectionString: DATABASE_URL });
    await c.connect();
    let found = 0;
    try {
      await c.query(`ANALYZE "${schema}".chunks`);
      const plan = await c.query(
        `EXPLAIN SELECT text FROM "${schema}".chunks WHERE tenant = 'default' ORDER BY embedding <=> '[${new Array(DIMS).fill(0.1).join(',')}]' LIMIT 10`,
      );
      expect(JSON.stringify(plan.rows)).toMatch(/chunks_embedding_hnsw/);
      await c.query('SET enable_indexscan = off');
      for (let q = 0; q < QUERIES; q++) {
        const query = vector();
        const { rows } = await c.query<{ text: string }>(`SELECT text FROM "${schema}".chunks WHERE tenant = 'default' ORDER BY embedding <=> $1 LIMIT 10`, [
          `[${Array.from(query).join(',')}]`,
        ]);
        const exact = new Set(rows.map((r) => r.text));
        const approx = await index.search('default', query, { limit: 10, filters: {} });
        expect(approx.hits.every((h) => !h.text.startsWith('other'))).toBe(true);
        found += approx.hits.filter((h) => exact.has(h.text)).length;
      }
    } finally {
      await c.end();
    }
    const recall = found / (QUERIES * 10);
    console.log(`HNSW recall@10 within one of two tenants: ${recall.toFixed(3)} (${2 * DOCS * CHUNKS} vectors, half the tenant's)`);
    expect(recall).toBeGreaterThanOrEqual(0.95);
  }, 120_000);
});
