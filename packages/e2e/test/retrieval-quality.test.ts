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
const load = (name: string) => JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8')) as EvalSet;
const data = load('retrieval-eval.json');
/** Queries for an exact identifier (error codes, settings, part numbers, ticket ids), searched in the same corpus after it. */
const terms = load('retrieval-eval-terms.json');

/**
 * Model × engine (× ranking), each model × engine a proxy of its own over the same worker. A hybrid setup searches the
 * proxy of its vector setup with `hybrid: true` (full-text rank fused with vector rank).
 */
const SETUPS = [
  'local-use-512 / redis',
  'local-hash-384 / redis',
  'local-use-512 / pgvector',
  'local-use-512 / pgvector hybrid',
  'local-hash-384 / pgvector',
  'local-hash-384 / pgvector hybrid',
] as const;
type Setup = (typeof SETUPS)[number];
type ProxySetup = Exclude<Setup, `${string} hybrid`>;
const proxyOf = (setup: Setup): ProxySetup => setup.replace(/ hybrid$/, '') as ProxySetup;

const DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const PG_SCHEMAS = { 'local-use-512': `quality_${randomBytes(6).toString('hex')}`, 'local-hash-384': `quality_${randomBytes(6).toString('hex')}` };
const withPg = (await pgVectorAvailability(DATABASE_URL)).answers;
if (!withPg) console.warn('retrieval quality on pgvector skipped: PostgreSQL does not answer');

let stack: Stack;
const proxies = {} as Record<ProxySetup, ServiceProcess>;
const ingested = new Set<string>();
type Quality = { recallAt5: number; mrr: number; p50: number; missed: string[] };
const quality = {} as Record<Setup, Quality>;
const termQuality = {} as Record<Setup, Quality>;

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
      RETRIEVAL_PG_SCHEMA: PG_SCHEMAS['local-use-512'],
    });
    proxies['local-hash-384 / pgvector'] = await stack.another('retrieval-proxy', {
      REDIS_DB_RETRIEVAL_PROXY: '7',
      RETRIEVAL_INDEX: 'pgvector',
      DATABASE_URL,
      RETRIEVAL_PG_SCHEMA: PG_SCHEMAS['local-hash-384'],
      RETRIEVAL_EMBEDDINGS_MODEL: 'local-hash-384',
    });
  }
}, 180_000);

afterAll(async () => {
  await stack?.stop();
  if (withPg) {
    const c = new pg.Client({ connectionString: DATABASE_URL });
    await c.connect();
    for (const schema of Object.values(PG_SCHEMAS)) await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await c.end();
  }
});

/**
 * Recall@5 and MRR of the setup's searches, and the median time of one (uncached: each query is asked once per setup,
 * and a hybrid answer is cached apart from the vector one; the query's embedding is part of it, the same for both).
 */
async function evaluate(setup: Setup, set: EvalSet = data): Promise<Quality> {
  const proxy = proxies[proxyOf(setup)];
  if (!ingested.has(`${proxyOf(setup)} ${set.passages[0]!.id}`)) {
    for (const p of set.passages) {
      const res = await call(proxy.url, 'POST', '/api/v1/documents', { body: { id: p.id, title: p.topic, text: p.text }, timeoutMs: 30_000 });
      expect(res.status, res.text).toBe(201);
    }
    ingested.add(`${proxyOf(setup)} ${set.passages[0]!.id}`);
  }
  const hybrid = setup.endsWith(' hybrid');
  let found = 0;
  let reciprocal = 0;
  const ms: number[] = [];
  const missed: string[] = [];
  for (const q of set.queries) {
    const started = performance.now();
    const res = await call<{ results: Array<{ documentId: string }> }>(proxy.url, 'POST', '/api/v1/search', {
      body: { query: q.query, limit: 50, ...(hybrid ? { hybrid: true } : {}) },
      timeoutMs: 30_000,
    });
    ms.push(performance.now() - started);
    expect(res.status, res.text).toBe(200);
    expect(res.headers.get('x-cache')).toBe('miss');
    const rank = res.json.results.findIndex((r) => q.relevant.includes(r.documentId)) + 1;
    if (rank >= 1 && rank <= 5) found++;
    else missed.push(`${q.query} (${rank || '-'})`);
    if (rank >= 1) reciprocal += 1 / rank;
  }
  ms.sort((a, b) => a - b);
  return { recallAt5: found / set.queries.length, mrr: reciprocal / set.queries.length, p50: ms[Math.floor(ms.length / 2)]!, missed };
}

describe(`retrieval quality on ${data.passages.length} passages and ${data.queries.length} paraphrased queries`, () => {
  for (const setup of SETUPS) {
    it.skipIf(setup.includes('pgvector') && !withPg)(`measures ${setup} through the proxy's search`, async () => {
      quality[setup] = await evaluate(setup);
      console.log(`${setup}: recall@5 ${quality[setup].recallAt5.toFixed(3)}, MRR ${quality[setup].mrr.toFixed(3)}, search p50 ${quality[setup].p50.toFixed(1)} ms`);
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

  for (const setup of SETUPS.filter((s) => s.includes('pgvector'))) {
    it.skipIf(!withPg)(`measures ${setup} on ${terms.queries.length} exact-term queries, their passages added to the corpus`, async () => {
      termQuality[setup] = await evaluate(setup, terms);
      const q = termQuality[setup];
      console.log(`${setup}, exact terms: recall@5 ${q.recallAt5.toFixed(3)}, MRR ${q.mrr.toFixed(3)}, search p50 ${q.p50.toFixed(1)} ms; not in the top 5 (rank): ${q.missed.join('; ') || 'none'}`);
    }, 600_000);
  }

  it.skipIf(!withPg)('hybrid ranking finds exact identifiers the semantic model misses, at no cost on paraphrased questions', () => {
    const [vector, hybrid] = [quality['local-use-512 / pgvector'], quality['local-use-512 / pgvector hybrid']];
    const [vectorTerms, hybridTerms] = [termQuality['local-use-512 / pgvector'], termQuality['local-use-512 / pgvector hybrid']];
    for (const q of [vector, hybrid, vectorTerms, hybridTerms]) expect(q, 'measured above').toBeDefined();
    // Full text matches a passage only when it holds every word of the query: paraphrases rarely do, so they rank as before.
    expect(hybrid.recallAt5).toBeGreaterThanOrEqual(vector.recallAt5 * 0.97);
    expect(hybrid.mrr).toBeGreaterThanOrEqual(vector.mrr * 0.97);
    expect(hybridTerms.recallAt5 - vectorTerms.recallAt5).toBeGreaterThanOrEqual(0.2);
    expect(hybridTerms.mrr - vectorTerms.mrr).toBeGreaterThanOrEqual(0.2);
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
