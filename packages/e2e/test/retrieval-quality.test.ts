import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgVectorAvailability } from '@aicache/retrieval-proxy/dist/domain/pgvector-index.js';
import { call, startStack, type ServiceProcess, type Stack } from './stack.js';

/**
 * Retrieval quality through the real services: every passage of the labeled set ingested through a
 * retrieval-proxy, every query searched over HTTP, the rank of its relevant passage read off the answer.
 * One proxy per model and engine, over the same worker.
 */
interface EvalSet {
  passages: Array<{ id: string; topic: string; text: string }>;
  queries: Array<{ query: string; relevant: string[] }>;
}
const data = JSON.parse(readFileSync(new URL('./fixtures/retrieval-eval.json', import.meta.url), 'utf8')) as EvalSet;

/** Model × engine, each a proxy of its own over the same worker. */
const SETUPS = ['local-use-512 / redis', 'local-hash-384 / redis', 'local-use-512 / pgvector'] as const;
type Setup = (typeof SETUPS)[number];

const DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const PG_SCHEMA = `quality_${randomBytes(6).toString('hex')}`;
const withPg = (await pgVectorAvailability(DATABASE_URL)).answers;
if (!withPg) console.warn('retrieval quality on pgvector skipped: PostgreSQL does not answer');

let stack: Stack;
const proxies = {} as Record<Setup, ServiceProcess>;
const quality = {} as Record<Setup, { recallAt5: number; mrr: number }>;

beforeAll(async () => {
  stack = await startStack({ env: { 'multimodal-worker': { EMBEDDINGS_LOCAL_MODELS: 'local-use-512,local-hash-384' } } });
  // The stack's own proxy asks for the worker's default (local-use-512); a second one, on its own DB, for the lexical model.
  proxies['local-use-512 / redis'] = stack.proxy;
  proxies['local-hash-384 / redis'] = await stack.another('retrieval-proxy', { REDIS_DB_RETRIEVAL_PROXY: '5', RETRIEVAL_EMBEDDINGS_MODEL: 'local-hash-384' });
  if (withPg) {
    proxies['local-use-512 / pgvector'] = await stack.another('retrieval-proxy', {
      REDIS_DB_RETRIEVAL_PROXY: '6',
      RETRIEVAL_INDEX: 'pgvector',
      DATABASE_URL,
      RETRIEVAL_PG_SCHEMA: PG_SCHEMA,
    });
  }
}, 180_000);

afterAll(async () => {
  await stack?.stop();
  if (withPg) {
    const c = new pg.Client({ connectionString: DATABASE_URL });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS "${PG_SCHEMA}" CASCADE`);
    await c.end();
  }
});

async function evaluate(setup: Setup): Promise<{ recallAt5: number; mrr: number }> {
  const proxy = proxies[setup];
  for (const p of data.passages) {
    const res = await call(proxy.url, 'POST', '/api/v1/documents', { body: { id: p.id, title: p.topic, text: p.text }, timeoutMs: 30_000 });
    expect(res.status, res.text).toBe(201);
  }
  let found = 0;
  let reciprocal = 0;
  for (const q of data.queries) {
    const res = await call<{ results: Array<{ documentId: string }> }>(proxy.url, 'POST', '/api/v1/search', { body: { query: q.query, limit: 50 }, timeoutMs: 30_000 });
    expect(res.status, res.text).toBe(200);
    const rank = res.json.results.findIndex((r) => q.relevant.includes(r.documentId)) + 1;
    if (rank >= 1 && rank <= 5) found++;
    if (rank >= 1) reciprocal += 1 / rank;
  }
  return { recallAt5: found / data.queries.length, mrr: reciprocal / data.queries.length };
}

describe(`retrieval quality on ${data.passages.length} passages and ${data.queries.length} paraphrased queries`, () => {
  for (const setup of SETUPS) {
    it.skipIf(setup.endsWith('pgvector') && !withPg)(`measures ${setup} through the proxy's search`, async () => {
      quality[setup] = await evaluate(setup);
      console.log(`${setup}: recall@5 ${quality[setup].recallAt5.toFixed(3)}, MRR ${quality[setup].mrr.toFixed(3)}`);
    }, 600_000);
  }

  it('ranks the semantic model clearly above the lexical one on paraphrased queries', () => {
    const semantic = quality['local-use-512 / redis'];
    const lexical = quality['local-hash-384 / redis'];
    expect(semantic, 'measured above').toBeDefined();
    expect(lexical, 'measured above').toBeDefined();
    expect(semantic.recallAt5).toBeGreaterThanOrEqual(0.85);
    expect(semantic.recallAt5 - lexical.recallAt5).toBeGreaterThanOrEqual(0.4);
    expect(semantic.mrr - lexical.mrr).toBeGreaterThanOrEqual(0.4);
  });

  it.skipIf(!withPg)('loses nothing to the HNSW index: pgvector answers as well as exact search on the same model', () => {
    const exact = quality['local-use-512 / redis'];
    const hnsw = quality['local-use-512 / pgvector'];
    expect(hnsw, 'measured above').toBeDefined();
    expect(hnsw.recallAt5).toBeGreaterThanOrEqual(exact.recallAt5 * 0.95);
  });

  it("finds a document by a question that shares no words with it (the README's walk-through)", async () => {
    const res = await call(stack.proxy.url, 'POST', '/api/v1/documents', {
      body: { id: 'kitten-care', title: 'Kitten care', text: 'Kittens need several small meals daily, their first vaccines at eight weeks, and regular visits to the vet.' },
    });
    expect(res.status, res.text).toBe(201);
    const search = await call<{ results: Array<{ documentId: string }> }>(stack.proxy.url, 'POST', '/api/v1/search', { body: { query: 'How do I keep a cat healthy?', limit: 3 } });
    expect(search.status).toBe(200);
    expect(search.json.results.map((r) => r.documentId)).toContain('kitten-care');
  });
});
