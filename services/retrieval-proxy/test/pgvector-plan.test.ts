import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { INDEX_FROM_CHUNKS, PgVectorIndex, pgVectorAvailability } from '../src/domain/pgvector-index.js';
import { embed, fakeDocMeta, pgQuery } from './helpers.js';

/**
 * Which plan ranks a search on the pgvector engine, against the machine's PostgreSQL. pgvector's cost estimate of an
 * HNSW scan grows with m × ef_search, and past a point the planner ranks every chunk of the tenant exactly (a
 * sequential scan and a sort) instead: 155 ms a search at 100k chunks with m 32 and ef_search 300 (BENCHMARKS.md). A
 * large tenant's unfiltered search is kept on the index. Which plan ran is read off PostgreSQL's own counters of
 * scans of the chunks table and of its HNSW index.
 */
const DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const pgState = await pgVectorAvailability(DATABASE_URL);
if (pgState.reason) console.warn(`pgvector plan tests skipped: ${pgState.reason}`);

const schema = `plan_${randomBytes(6).toString('hex')}`;
const indexes: PgVectorIndex[] = [];
const CHUNKS = 3000;

/** The index over the one schema: a large graph and pgvector's largest ef_search, where the planner ranks exactly. */
function pgIndex(indexFromChunks?: number): PgVectorIndex {
  const index = new PgVectorIndex({
    connectionString: DATABASE_URL,
    schema,
    efSearch: 1000,
    timeoutMs: 60_000,
    poolSize: 2,
    hnsw: { m: 48, efConstruction: 96 },
    ...(indexFromChunks === undefined ? {} : { indexFromChunks }),
  });
  indexes.push(index);
  return index;
}

const sql = <T extends pg.QueryResultRow>(text: string, params: unknown[] = []) => pgQuery<T>(DATABASE_URL, text, params);

/** Sequential scans of the chunks table and scans of its HNSW index, as PostgreSQL counts them. */
async function scans(): Promise<{ seq: number; hnsw: number }> {
  const [row] = await sql<{ seq: string; hnsw: string }>(
    `SELECT t.seq_scan AS seq, i.idx_scan AS hnsw FROM pg_stat_user_tables t JOIN pg_stat_user_indexes i ON i.relid = t.relid
     WHERE t.schemaname = $1 AND t.relname = 'chunks' AND i.indexrelname = 'chunks_embedding_hnsw'`,
    [schema],
  );
  return { seq: Number(row!.seq), hnsw: Number(row!.hnsw) };
}

/** One search; then waits (up to 15 s: a backend reports its counters when idle, at most once a second) for a count to move. */
async function searchAndCount(index: PgVectorIndex): Promise<{ seq: number; hnsw: number }> {
  const before = await scans();
  const out = await index.search('default', embed('chunk 7 about topic 7'), { limit: 10, filters: {} }, await index.stamp());
  expect(out.hits).toHaveLength(10);
  for (let waited = 0; waited < 15_000; waited += 250) {
    const now = await scans();
    if (now.seq !== before.seq || now.hnsw !== before.hnsw) return { seq: now.seq - before.seq, hnsw: now.hnsw - before.hnsw };
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error('no scan of the chunks table was counted within 15 s');
}

describe.skipIf(!pgState.answers)('the plan of a search on the pgvector engine', () => {
  afterAll(async () => {
    for (const index of indexes) await index.close();
    await sql(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  });

  it("keeps a large tenant's search on the HNSW index where the planner would rank every chunk exactly", async () => {
    expect(pgState.reason, pgState.reason).toBe('');
    expect(INDEX_FROM_CHUNKS).toBeGreaterThan(CHUNKS);
    const planner = pgIndex();
    for (let d = 0; d < CHUNKS / 500; d++) {
      const texts = Array.from({ length: 500 }, (_, i) => `chunk ${i} about topic ${(d * 500 + i) % 89} in document ${d}`);
      const meta = fakeDocMeta(`doc-${d}`, texts.length);
      await planner.put('default', { meta, chunks: texts.map((text) => ({ text, vector: embed(text) })) });
    }
    await sql(`ANALYZE "${schema}".chunks`);
    await sql(`ANALYZE "${schema}".documents`);

    // Below INDEX_FROM_CHUNKS the planner chooses: here, at this ef_search, a sequential scan and a sort.
    const exact = await searchAndCount(planner);
    expect(exact).toEqual({ seq: expect.any(Number), hnsw: 0 });
    expect(exact.seq).toBeGreaterThan(0);
    // Counted as large: the same search through the index, and no scan of the table.
    const kept = await searchAndCount(pgIndex(CHUNKS));
    expect(kept).toEqual({ seq: 0, hnsw: 1 });
  }, 120_000);
});
