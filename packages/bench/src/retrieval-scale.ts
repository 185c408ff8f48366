// pnpm --filter @aicache/bench run bench:retrieval: the two document-index engines of retrieval-proxy at growing
// corpus sizes, side by side in one run: uncached search latency (the engine's ranking alone: the query is already a
// vector), memory a proxy replica holds for the index, load time, and ingest throughput with the semantic model.
// Vectors are generated (low-rank, as text embeddings are), not embedded: a million texts would take hours.
// Env: BENCH_SCALE_SIZES=10000,100000[,1000000]  BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test
//      BENCH_SCALE_QUERIES=200  BENCH_SCALE_INGEST=512 (chunks embedded for the ingest row)
// Run with --expose-gc (the script in package.json does) so memory figures are taken after a collection.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { startRedisServer } from '@aicache/test-redis';
import { DocumentStore, type DocumentMeta, type StoredDocument } from '@aicache/retrieval-proxy/dist/domain/document-store.js';
import { PgVectorIndex } from '@aicache/retrieval-proxy/dist/domain/pgvector-index.js';
import { RedisRetrievalIndex, type RetrievalIndex } from '@aicache/retrieval-proxy/dist/domain/retrieval-index.js';
import { LocalSemanticProvider } from '@aicache/multimodal-worker/dist/providers/local-semantic.js';
import { lowRankVectors } from './synthetic.js';

const SIZES = (process.env.BENCH_SCALE_SIZES ?? '10000,100000').split(',').map(Number);
const DATABASE_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const QUERIES = Number(process.env.BENCH_SCALE_QUERIES ?? 200);
const INGEST_CHUNKS = Number(process.env.BENCH_SCALE_INGEST ?? 512);
const DIMS = 384;
const RANK = 64;
const PER_DOC = 1000;
/** Every document of the benchmark belongs to one tenant (searches are per tenant). */
const TENANT = 'default';

const log = (msg: string): void => void process.stderr.write(`${msg}\n`);
const gc = (): void => (globalThis as { gc?: () => void }).gc?.();
/** What the process holds in JavaScript objects and buffers (the index's vectors are ArrayBuffers). */
const held = (): number => {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

const vector = lowRankVectors(DIMS, RANK, 7);

function meta(id: string, chunks: number, model = 'synthetic', dims = DIMS): DocumentMeta {
  return { id, title: id, metadata: {}, createdAt: new Date(0).toISOString(), chunkCount: chunks, contentHash: '', model, dimensions: dims, chunkSize: 800, chunkOverlap: 120 };
}
function syntheticDoc(d: number): StoredDocument {
  return { meta: meta(`doc-${d}`, PER_DOC), chunks: Array.from({ length: PER_DOC }, (_, i) => ({ text: `document ${d} chunk ${i}`, vector: vector() })) };
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

async function latencies(index: RetrievalIndex): Promise<{ p50: number; p99: number }> {
  const stamp = await index.stamp();
  for (let i = 0; i < 5; i++) await index.search(TENANT, vector(), { limit: 10, filters: {} }, stamp);
  const times: number[] = [];
  for (let i = 0; i < QUERIES; i++) {
    const q = vector();
    const t0 = performance.now();
    await index.search(TENANT, q, { limit: 10, filters: {} }, stamp);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { p50: pct(times, 50), p99: pct(times, 99) };
}

interface Row {
  engine: string;
  chunks: number;
  loadSeconds: number;
  indexBuildSeconds?: number;
  p50Ms: number;
  p99Ms: number;
  replicaMemoryMB: number;
}

async function redisEngine(size: number): Promise<Row> {
  const server = await startRedisServer({ args: ['--maxmemory', '0'] });
  const client = new Redis(server.url, { commandTimeout: 600_000 });
  try {
    const store = new DocumentStore(client, `state:bench-${randomBytes(3).toString('hex')}`, 600_000);
    const t0 = performance.now();
    for (let d = 0; d < size / PER_DOC; d++) await store.put(TENANT, syntheticDoc(d));
    const loadSeconds = (performance.now() - t0) / 1000;
    gc();
    const before = held();
    const index = new RedisRetrievalIndex(store);
    await index.warmUp();
    gc();
    const replicaMemoryMB = (held() - before) / 1e6;
    const { p50, p99 } = await latencies(index);
    return { engine: 'redis', chunks: size, loadSeconds, p50Ms: p50, p99Ms: p99, replicaMemoryMB };
  } finally {
    client.disconnect();
    await server.stop();
  }
}

async function pgEngine(size: number): Promise<Row> {
  const schema = `bench_${randomBytes(4).toString('hex')}`;
  const index = new PgVectorIndex({ connectionString: DATABASE_URL, schema, efSearch: 40, timeoutMs: 3_600_000, poolSize: 2 });
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  await admin.connect();
  try {
    await index.put(TENANT, syntheticDoc(0));
    // Loading with the HNSW index in place would insert into it row by row; as with any bulk load, it is built after.
    await admin.query(`DROP INDEX "${schema}".chunks_embedding_hnsw`);
    const t0 = performance.now();
    for (let d = 1; d < size / PER_DOC; d++) await index.put(TENANT, syntheticDoc(d));
    const loadSeconds = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    await admin.query(`SET maintenance_work_mem = '2GB'`);
    await admin.query(`CREATE INDEX chunks_embedding_hnsw ON "${schema}".chunks USING hnsw (embedding vector_cosine_ops)`);
    const indexBuildSeconds = (performance.now() - t1) / 1000;
    // Statistics as autovacuum would gather them after the load: the planner chooses HNSW for the tenant by them.
    await admin.query(`ANALYZE "${schema}".chunks`);
    await admin.query(`ANALYZE "${schema}".documents`);
    gc();
    const before = held();
    await index.warmUp();
    const { p50, p99 } = await latencies(index);
    gc();
    return { engine: 'pgvector', chunks: size, loadSeconds, indexBuildSeconds, p50Ms: p50, p99Ms: p99, replicaMemoryMB: (held() - before) / 1e6 };
  } finally {
    await index.close();
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
  }
}

/** The semantic model's cost: load (time, memory), per text in batches and one at a time, over 64 short sentences. */
async function modelRow(): Promise<{ loadMs: number; loadMB: number; warmMB: number; batchMsPerText: number; singleMsPerText: number }> {
  const rss0 = process.memoryUsage().rss;
  const model = new LocalSemanticProvider();
  const { loadMs, loadRssBytes } = await model.loaded;
  const sentences = Array.from({ length: 64 }, (_, i) => `sentence ${i} about ${['rivers', 'cooking', 'music', 'trains'][i % 4]} and the weather today`);
  try {
    await model.embed(sentences.slice(0, 8));
    const t0 = performance.now();
    await model.embed(sentences);
    const batchMsPerText = (performance.now() - t0) / sentences.length;
    const t1 = performance.now();
    for (const s of sentences.slice(0, 16)) await model.embed([`${s} once`]);
    const singleMsPerText = (performance.now() - t1) / 16;
    return { loadMs, loadMB: loadRssBytes / 1e6, warmMB: (process.memoryUsage().rss - rss0) / 1e6, batchMsPerText, singleMsPerText };
  } finally {
    await model.close();
  }
}

/** Chunks per second through the semantic model into each engine: embedding in batches of 64, then one put per 64. */
async function ingestRows(): Promise<Array<{ engine: string; chunksPerSecond: number; embedShare: number }>> {
  const model = new LocalSemanticProvider();
  await model.loaded;
  const words = 'the river city forest music recipe travel market health garden history science energy water'.split(' ');
  const texts = Array.from({ length: INGEST_CHUNKS }, (_, i) =>
    Array.from({ length: 70 }, (_, j) => words[(i * 7 + j * 3) % words.length]).join(' '),
  );
  const server = await startRedisServer();
  const client = new Redis(server.url);
  const schema = `bench_${randomBytes(4).toString('hex')}`;
  const engines: Array<[string, RetrievalIndex]> = [
    ['redis', new RedisRetrievalIndex(new DocumentStore(client, 'state:bench-ingest', 60_000))],
    ['pgvector', new PgVectorIndex({ connectionString: DATABASE_URL, schema, efSearch: 40, timeoutMs: 60_000, poolSize: 2 })],
  ];
  const out: Array<{ engine: string; chunksPerSecond: number; embedShare: number }> = [];
  try {
    for (const [name, index] of engines) {
      let embedMs = 0;
      const t0 = performance.now();
      for (let i = 0; i < texts.length; i += 64) {
        const batch = texts.slice(i, i + 64);
        const e0 = performance.now();
        const vectors = await model.embed(batch);
        embedMs += performance.now() - e0;
        await index.put(TENANT, { meta: meta(`ingest-${i}`, batch.length, model.id, model.dimensions), chunks: batch.map((text, k) => ({ text, vector: vectors[k]! })) });
      }
      const ms = performance.now() - t0;
      out.push({ engine: name, chunksPerSecond: texts.length / (ms / 1000), embedShare: embedMs / ms });
    }
  } finally {
    await model.close();
    client.disconnect();
    await server.stop();
    await (engines[1]![1] as PgVectorIndex).close();
    const admin = new pg.Client({ connectionString: DATABASE_URL });
    await admin.connect();
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
  }
  return out;
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  for (const size of SIZES) {
    for (const run of [redisEngine, pgEngine]) {
      log(`${run === redisEngine ? 'redis' : 'pgvector'}: ${size} chunks...`);
      const row = await run(size);
      rows.push(row);
      log(`  ${JSON.stringify(row)}`);
    }
  }
  const model = await modelRow();
  const ingest = await ingestRows();
  const f = (n: number, d = 1) => n.toFixed(d);
  console.log('\n| engine | chunks | load s | HNSW build s | search p50 ms | search p99 ms | replica memory MB |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.engine} | ${r.chunks.toLocaleString('en')} | ${f(r.loadSeconds)} | ${r.indexBuildSeconds === undefined ? '-' : f(r.indexBuildSeconds)} | ${f(r.p50Ms, 2)} | ${f(r.p99Ms, 2)} | ${f(r.replicaMemoryMB, 0)} |`);
  }
  for (const size of SIZES) {
    const [a, b] = [rows.find((r) => r.engine === 'redis' && r.chunks === size)!, rows.find((r) => r.engine === 'pgvector' && r.chunks === size)!];
    console.log(`\n${size.toLocaleString('en')} chunks: pgvector p50 / redis p50 = ${f(b.p50Ms / a.p50Ms, 2)}, p99 ratio ${f(b.p99Ms / a.p99Ms, 2)}`);
  }
  console.log(
    `\nlocal-use-512: loaded in ${f(model.loadMs, 0)} ms (+${f(model.loadMB, 0)} MB resident; +${f(model.warmMB, 0)} MB once warm), ` +
      `${f(model.batchMsPerText)} ms a sentence in a batch of 64, ${f(model.singleMsPerText)} ms one at a time`,
  );
  console.log('\n| ingest with local-use-512 | chunks/s | share of time embedding |');
  console.log('|---|---|---|');
  for (const r of ingest) console.log(`| ${r.engine} | ${f(r.chunksPerSecond, 0)} | ${f(r.embedShare * 100, 0)} % |`);
  console.log(`\n${DIMS} dimensions, rank-${RANK} vectors, ${QUERIES} queries of limit 10 per cell, ef_search 40; machine: ${process.arch}, node ${process.version}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    log(String((err as Error)?.stack ?? err));
    process.exit(1);
  },
);
