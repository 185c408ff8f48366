// pnpm --filter @aicache/bench run bench:hybrid: what hybrid ranking (full-text rank fused with vector rank) costs on
// retrieval-proxy's pgvector engine, side by side with the vector search in one run, on a generated corpus: search
// latency (the engine's statement alone: the query is already a vector), the full-text migration of an existing
// corpus (migration 5: the generated tsvector column and its GIN index), and the room they take.
// Texts are generated from a Zipf-distributed vocabulary (a few words in most chunks, most words in few), each chunk
// naming one identifier of its own (`e<number>`); vectors are generated (low-rank, as text embeddings are).
// Query kinds: `identifier` (one chunk's identifier: the full-text list holds one chunk), `two words` (two words drawn
// as the texts draw them: a few hundred to thousands of chunks hold both), `common word` (the most frequent word: most
// chunks hold it, the costliest full-text ranking there is).
//
// Env: BENCH_HYBRID_CHUNKS=100000  BENCH_HYBRID_QUERIES=200 (timed queries per kind and ranking)
//      BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test  BENCH_HYBRID_KEEP=1 (keep the schema)
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { DocumentMeta, StoredDocument } from '@aicache/retrieval-proxy/dist/domain/document-store.js';
import { PgVectorIndex } from '@aicache/retrieval-proxy/dist/domain/pgvector-index.js';
import { lowRankVectors, seededRandom } from './synthetic.js';

const env = process.env;
const CHUNKS = Number(env.BENCH_HYBRID_CHUNKS ?? 100_000);
const QUERIES = Number(env.BENCH_HYBRID_QUERIES ?? 200);
const DATABASE_URL = env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const KEEP = env.BENCH_HYBRID_KEEP === '1';
const DIMS = 384;
const RANK = 64;
const PER_DOC = 1000;
const WORDS_PER_CHUNK = 60;
const VOCABULARY = 20_000;
const TENANT = 'default';

const log = (msg: string): void => void process.stderr.write(`${msg}\n`);
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

/** Pronounceable made-up words (no stop words among them, so every one is indexed). */
function vocabulary(n: number): string[] {
  const random = seededRandom(11);
  const [cons, vows] = ['bcdfghklmnprstvz', 'aeiou'];
  const out = new Set<string>();
  while (out.size < n) {
    let w = '';
    for (let s = 0; s < 2 + Math.floor(random() * 3); s++) w += cons[Math.floor(random() * cons.length)]! + vows[Math.floor(random() * vows.length)]!;
    out.add(w);
  }
  return [...out];
}

/** Draws word ranks with probability ~ 1 / rank (Zipf, s = 1), by inverting the cumulative sum. */
function zipf(n: number, seed: number): () => number {
  const cumulative = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) cumulative[i] = sum += 1 / (i + 1);
  const random = seededRandom(seed);
  return () => {
    const x = random() * sum;
    let [lo, hi] = [0, n - 1];
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

const words = vocabulary(VOCABULARY);

function meta(id: string, chunks: number): DocumentMeta {
  return { id, title: id, metadata: {}, createdAt: new Date(0).toISOString(), chunkCount: chunks, contentHash: '', model: 'synthetic', dimensions: DIMS, chunkSize: 800, chunkOverlap: 120 };
}

async function main(): Promise<void> {
  const schema = `bench_hybrid_${randomBytes(4).toString('hex')}`;
  const s = `"${schema}"`;
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  await admin.connect();
  let index = new PgVectorIndex({ connectionString: DATABASE_URL, schema, efSearch: 40, timeoutMs: 3_600_000, poolSize: 2 });
  try {
    const vector = lowRankVectors(DIMS, RANK, 7);
    const word = zipf(VOCABULARY, 13);
    const doc = (d: number): StoredDocument => ({
      meta: meta(`doc-${d}`, PER_DOC),
      chunks: Array.from({ length: PER_DOC }, (_, i) => {
        const text = Array.from({ length: WORDS_PER_CHUNK }, () => words[word()]!);
        // The chunk's own identifier, somewhere in its text.
        text.splice(Math.floor(WORDS_PER_CHUNK / 2), 0, `e${d * PER_DOC + i}`);
        return { text: `${text.join(' ')}.`, vector: vector() };
      }),
    });
    log(`loading ${CHUNKS.toLocaleString('en')} chunks into ${schema}...`);
    const t0 = performance.now();
    await index.put(TENANT, doc(0));
    // As a bulk load is done: the HNSW index built after the rows are in.
    await admin.query(`DROP INDEX ${s}.chunks_embedding_hnsw`);
    for (let d = 1; d < CHUNKS / PER_DOC; d++) await index.put(TENANT, doc(d));
    const loadSeconds = (performance.now() - t0) / 1000;
    await admin.query(`SET maintenance_work_mem = '1GB'`);
    const t1 = performance.now();
    await admin.query(`CREATE INDEX chunks_embedding_hnsw ON ${s}.chunks USING hnsw (embedding vector_cosine_ops)`);
    log(`  loaded in ${loadSeconds.toFixed(0)} s (full-text column kept on every write), HNSW built in ${((performance.now() - t1) / 1000).toFixed(0)} s`);

    // The full-text migration of an existing corpus: the schema as the release before it left it, then migrated.
    await index.close();
    await admin.query(`ALTER TABLE ${s}.chunks DROP COLUMN tsv; ALTER TABLE ${s}.tenants DROP COLUMN version; DELETE FROM ${s}.migrations WHERE version >= 5`);
    await admin.query(`VACUUM FULL ${s}.chunks`);
    const sizeBefore = Number((await admin.query(`SELECT pg_total_relation_size('${s}.chunks') AS n`)).rows[0].n);
    index = new PgVectorIndex({ connectionString: DATABASE_URL, schema, efSearch: 40, timeoutMs: 10_000, poolSize: 2 });
    const t2 = performance.now();
    await index.migrate();
    const migrateSeconds = (performance.now() - t2) / 1000;
    await admin.query(`ANALYZE ${s}.chunks; ANALYZE ${s}.documents`);
    const sizes = (
      await admin.query<{ total: string; gin: string }>(`SELECT pg_total_relation_size('${s}.chunks') AS total, pg_relation_size('${s}.chunks_tsv') AS gin`)
    ).rows[0]!;
    const mb = (n: number) => (n / 1024 / 1024).toFixed(0);
    log(`  migration 5 on ${CHUNKS.toLocaleString('en')} chunks: ${migrateSeconds.toFixed(1)} s`);

    const stamp = await index.stamp();
    const queryVector = lowRankVectors(DIMS, RANK, 7, 1007);
    const pick = seededRandom(17);
    const kinds: Record<string, () => string> = {
      identifier: () => `e${Math.floor(pick() * CHUNKS)}`,
      'two words': () => `${words[word()]} ${words[word()]}`,
      'common word': () => words[0]!,
    };
    console.log(`\nhybrid ranking cost, pgvector, ${CHUNKS.toLocaleString('en')} chunks of ${WORDS_PER_CHUNK + 1} words, limit 10, ${QUERIES} queries per kind and ranking, interleaved`);
    console.log(`migration 5 (tsvector column + GIN index) on the existing corpus: ${migrateSeconds.toFixed(1)} s; chunks table ${mb(sizeBefore)} MB -> ${mb(Number(sizes.total))} MB (GIN index ${mb(Number(sizes.gin))} MB)`);
    console.log('| query kind | chunks matching (mean) | vector p50 / p99 ms | hybrid p50 / p99 ms | hybrid / vector p50 |');
    console.log('|---|---|---|---|---|');
    for (const [kind, text] of Object.entries(kinds)) {
      const [vector, hybrid, matching]: [number[], number[], number[]] = [[], [], []];
      for (let i = 0; i < QUERIES + 5; i++) {
        const [q, t] = [queryVector(), text()];
        // Alternating which goes first, so neither always meets the other's warm cache.
        const order = i % 2 === 0 ? (['v', 'h'] as const) : (['h', 'v'] as const);
        for (const which of order) {
          const started = performance.now();
          await index.search(TENANT, q, { limit: 10, filters: {}, ...(which === 'h' ? { hybridText: t } : {}) }, stamp);
          if (i >= 5) (which === 'h' ? hybrid : vector).push(performance.now() - started);
        }
        if (i >= 5 && i < 25) {
          matching.push(Number((await admin.query(`SELECT count(*) AS n FROM ${s}.chunks WHERE tsv @@ websearch_to_tsquery('english', $1)`, [t])).rows[0].n));
        }
      }
      vector.sort((a, b) => a - b);
      hybrid.sort((a, b) => a - b);
      const mean = matching.reduce((a, b) => a + b, 0) / matching.length;
      console.log(
        `| ${kind} | ${Math.round(mean).toLocaleString('en')} | ${pct(vector, 50).toFixed(1)} / ${pct(vector, 99).toFixed(1)} | ${pct(hybrid, 50).toFixed(1)} / ${pct(hybrid, 99).toFixed(1)} | ${(pct(hybrid, 50) / pct(vector, 50)).toFixed(2)} |`,
      );
    }
  } finally {
    await index.close().catch(() => undefined);
    if (KEEP) log(`kept schema ${schema}`);
    else await admin.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
    await admin.end();
  }
}

await main();
