import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '@aicache/service-kit';
import { loadConfig } from '../src/config.js';
import { PgVectorIndex, pgVectorAvailability } from '../src/domain/pgvector-index.js';
import { DIMS, embed, fakeDocMeta, pgQuery } from './helpers.js';

/**
 * The memory of the HNSW index a re-embed builds (RETRIEVAL_PG_BUILD_MEMORY → maintenance_work_mem), against the
 * machine's PostgreSQL with pgvector: the build runs in it, and one that outgrows it is reported with what to change.
 */
const DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const pgState = await pgVectorAvailability(DATABASE_URL);
if (pgState.reason) console.warn(`pgvector build tests skipped: ${pgState.reason}`);

const schemas: string[] = [];
const indexes: PgVectorIndex[] = [];

function pgIndex(buildMemory: string | undefined, warnings: string[]): PgVectorIndex {
  const schema = `build_${randomBytes(6).toString('hex')}`;
  schemas.push(schema);
  const index = new PgVectorIndex({
    connectionString: DATABASE_URL,
    schema,
    efSearch: 40,
    timeoutMs: 60_000,
    poolSize: 2,
    ...(buildMemory ? { buildMemory } : {}),
    warn: (m) => warnings.push(m),
  });
  indexes.push(index);
  return index;
}

/** `docs` documents of `per` chunks each (1,500 chunks of 64 dimensions: a graph of more than 1 MB). */
async function fill(index: PgVectorIndex, docs: number, per: number): Promise<void> {
  for (let d = 0; d < docs; d++) {
    const texts = Array.from({ length: per }, (_, i) => `document ${d} chunk ${i} about topic ${(d * per + i) % 97} and word ${i % 13}`);
    const meta = fakeDocMeta(`doc-${d}`, per, `${d}`);
    await index.put('default', { meta, chunks: texts.map((text) => ({ text, vector: embed(text) })) });
  }
}

/** A whole re-embed to a model of the same dimension, through the engine's steps. */
async function reembed(index: PgVectorIndex): Promise<void> {
  await index.reembed.claim({ job: 'job-1', model: 'fake-bow-64-v2', dimensions: DIMS });
  for (const d of await index.reembed.load('job-1', await index.reembed.refs())) {
    expect(await index.reembed.stage('job-1', d.tenant, d.meta, 'fake-bow-64-v2', d.texts.map(embed))).toBe(1);
  }
  await index.reembed.settle('job-1');
  expect((await index.reembed.switchModel('job-1')).outcome).toBe('switched');
}

describe.skipIf(!pgState.answers)('the HNSW build memory of a re-embed (RETRIEVAL_PG_BUILD_MEMORY)', () => {
  afterAll(async () => {
    for (const index of indexes) await index.close();
    for (const s of schemas) await pgQuery(DATABASE_URL, `DROP SCHEMA IF EXISTS "${s}" CASCADE`);
  });

  it('builds in the memory it is given: too little is reported as a slow build with what to raise; enough is not', async () => {
    expect(pgState.reason, pgState.reason).toBe('');
    const small: string[] = [];
    const tight = pgIndex('1MB', small);
    await fill(tight, 3, 500);
    await reembed(tight);
    expect(small).toHaveLength(1);
    expect(small[0]).toMatch(/outgrew its build memory \(1MB\).*hnsw graph no longer fits into maintenance_work_mem.*Raise RETRIEVAL_PG_BUILD_MEMORY/);
    // The setting was the build's only: the connection is back to the server's.
    const server = (await pgQuery<{ maintenance_work_mem: string }>(DATABASE_URL, 'SHOW maintenance_work_mem'))[0]!.maintenance_work_mem;
    // Both of the index's pooled connections, the build's among them.
    const pool = (tight as unknown as { pool: pg.Pool }).pool;
    const held = [await pool.connect(), await pool.connect()];
    for (const conn of held) {
      expect((await conn.query<{ maintenance_work_mem: string }>('SHOW maintenance_work_mem')).rows[0]!.maintenance_work_mem).toBe(server);
      conn.release();
    }

    const roomy: string[] = [];
    const enough = pgIndex('256MB', roomy);
    await fill(enough, 3, 500);
    await reembed(enough);
    expect(roomy).toEqual([]);
    const hits = await enough.search('default', embed('document 1 chunk 5 about topic 2'), { limit: 3, filters: {} }, await enough.stamp());
    expect(hits.hits.map((h) => h.meta.id)).toContain('doc-1');
  }, 120_000);

  it('refuses a setting PostgreSQL would not take, at boot', () => {
    expect(() => loadConfig({ RETRIEVAL_PG_BUILD_MEMORY: '4 GB' })).toThrow(ConfigError);
    expect(() => loadConfig({ RETRIEVAL_PG_BUILD_MEMORY: "1GB'; DROP TABLE x; --" })).toThrow(ConfigError);
    expect(loadConfig({ RETRIEVAL_PG_BUILD_MEMORY: '4GB' }).RETRIEVAL_PG_BUILD_MEMORY).toBe('4GB');
    expect(() => new PgVectorIndex({ connectionString: DATABASE_URL, schema: 'x', efSearch: 40, timeoutMs: 1000, poolSize: 1, buildMemory: '4 GB' })).toThrow(/RETRIEVAL_PG_BUILD_MEMORY/);
  });
});
