// pnpm --filter @aicache/bench run bench:retrieval: the two document-index engines of retrieval-proxy at growing
// corpus sizes, side by side in one run: uncached search latency (the engine's ranking alone: the query is already a
// vector), memory a proxy replica holds for the index, load time, HNSW build time and recall@10 against exact search,
// and ingest throughput with the semantic model.
// Vectors are generated, not embedded: a million texts would take hours. By default they are shaped like
// local-use-512's embeddings of real text (synthetic.ts embeddingLikeCorpus, 512 dimensions: a decaying spectrum,
// groups of topics, passages around their topic, queries as perturbed passages; the shape measured by
// embedding-shape.ts); BENCH_SCALE_VECTORS=lowrank gives the older 384-dimension low-rank vectors (64 isotropic
// directions, no topics, queries drawn like the corpus: a worst case for a graph index). Both engines get the same
// corpus and the same queries at a size. Load time is the writes alone (`put`, one document of
// 1,000 chunks a call), not generating the vectors.
//
// Env: BENCH_SCALE_SIZES=10000,100000[,1000000]  BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test
//      BENCH_SCALE_VECTORS=embedding-like (default) | lowrank: the corpus's shape (see above); a reused schema must
//        have been loaded with the same one
//      BENCH_SCALE_ENGINES=redis,pgvector (either or both)
//      BENCH_SCALE_QUERIES=200 (timed queries per cell)  BENCH_SCALE_REDIS_QUERIES (default: 20 from 1,000,000
//        chunks, BENCH_SCALE_QUERIES below; every one is a full scan of the corpus)
//      BENCH_SCALE_RECALL_QUERIES=20 (pgvector answer vs exact top 10, a sequential scan with enable_indexscan off)
//      BENCH_SCALE_EF_SEARCH=40[,100,...] (hnsw.ef_search; each value gives a pgvector row of its own: latency
//        and recall at it, on the same index)  BENCH_SCALE_BUILD_MEM=4GB (maintenance_work_mem of the HNSW build; a NOTICE "hnsw
//        graph no longer fits into maintenance_work_mem" is printed and means the build slowed down: raise it)
//      BENCH_SCALE_HNSW_WITH=m=32,ef_construction=128 (build parameters other than the proxy's, m 16 and
//        ef_construction 64: what a larger graph buys in recall and costs in build time)
//      BENCH_SCALE_BUILD_WORKERS (max_parallel_maintenance_workers of the build; default: cores - 1, the leader works too)
//      BENCH_SCALE_MODEL=0 (leaves out the semantic model's rows)
//      BENCH_SCALE_KEEP=1: the pgvector schema is left loaded and indexed (its name printed) instead of dropped.
//      BENCH_SCALE_REUSE=<schema>: no load; the kept schema is searched (warm-up, p50/p99, recall) and kept: the
//        latency of a large corpus re-measured in seconds, e.g. on a quiet machine. Drop it with
//        psql -c 'DROP SCHEMA <schema> CASCADE' when done.
// Run with --expose-gc (the script in package.json does) so memory figures are taken after a collection; the
// script also raises the heap bound, which the Redis engine's copy of a million chunks needs.
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Redis } from 'ioredis';
import pg from 'pg';
import { startRedisServer } from '@aicache/test-redis';
import { DocumentStore, type DocumentMeta, type StoredDocument } from '@aicache/retrieval-proxy/dist/domain/document-store.js';
import { PgVectorIndex } from '@aicache/retrieval-proxy/dist/domain/pgvector-index.js';
import { RedisRetrievalIndex, type RetrievalIndex } from '@aicache/retrieval-proxy/dist/domain/retrieval-index.js';
import { LocalSemanticProvider } from '@aicache/multimodal-worker/dist/providers/local-semantic.js';
import { embeddingLikeCorpus, lowRankVectors } from './synthetic.js';

const env = process.env;
const SIZES = (env.BENCH_SCALE_SIZES ?? '10000,100000').split(',').map(Number);
const ENGINES = (env.BENCH_SCALE_ENGINES ?? 'redis,pgvector').split(',').map((e) => e.trim());
const DATABASE_URL = env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const QUERIES = Number(env.BENCH_SCALE_QUERIES ?? 200);
const redisQueries = (size: number): number => Number(env.BENCH_SCALE_REDIS_QUERIES ?? (size >= 1_000_000 ? 20 : QUERIES));
const RECALL_QUERIES = Number(env.BENCH_SCALE_RECALL_QUERIES ?? 20);
const EF_SEARCH = (env.BENCH_SCALE_EF_SEARCH ?? '40').split(',').map(Number);
const BUILD_MEM = env.BENCH_SCALE_BUILD_MEM ?? '4GB';
const BUILD_WORKERS = Number(env.BENCH_SCALE_BUILD_WORKERS ?? Math.max(1, availableParallelism() - 1));
const HNSW_WITH = env.BENCH_SCALE_HNSW_WITH ?? '';
if (HNSW_WITH && !/^(m|ef_construction)=\d+(,(m|ef_construction)=\d+)?$/.test(HNSW_WITH)) throw new Error(`BENCH_SCALE_HNSW_WITH: m=N,ef_construction=N, got ${HNSW_WITH}`);
const KEEP = env.BENCH_SCALE_KEEP === '1';
const REUSE = env.BENCH_SCALE_REUSE;
const WITH_MODEL = env.BENCH_SCALE_MODEL !== '0';
const INGEST_CHUNKS = Number(env.BENCH_SCALE_INGEST ?? 512);
const VECTORS = env.BENCH_SCALE_VECTORS ?? 'embedding-like';
if (VECTORS !== 'embedding-like' && VECTORS !== 'lowrank') throw new Error(`BENCH_SCALE_VECTORS: embedding-like or lowrank, got ${VECTORS}`);
const RANK = 64;
const PER_DOC = 1000;
/** The corpus's directions; the queries are drawn from them by a sequence of their own. */
const SEED = 7;
const QUERY_SEED = 1007;
const embeddingLike = embeddingLikeCorpus(SEED);
const DIMS = VECTORS === 'lowrank' ? 384 : embeddingLike.dims;
/** The corpus's vectors in order (chunk 0, 1, ...). */
const corpusVectors = (): (() => Float32Array) => (VECTORS === 'lowrank' ? lowRankVectors(DIMS, RANK, SEED) : embeddingLike.stream());
/**
 * Queries for a corpus of `size` chunks by the sequence `drawSeed`: low-rank ones are drawn like the corpus;
 * embedding-like ones are perturbed passages of the corpus's first `size` chunks.
 */
const queryVectors = (size: number, drawSeed: number): (() => Float32Array) =>
  VECTORS === 'lowrank' ? lowRankVectors(DIMS, RANK, SEED, drawSeed) : embeddingLike.queries(size, drawSeed);
/** Every document of the benchmark belongs to one tenant (searches are per tenant). */
const TENANT = 'default';

const log = (msg: string): void => void process.stderr.write(`${msg}\n`);
const gc = (): void => (globalThis as { gc?: () => void }).gc?.();
/** What the process holds in JavaScript objects and buffers (the index's vectors are ArrayBuffers). */
const held = (): number => {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};
const toSql = (v: Float32Array): string => `[${Array.from(v).join(',')}]`;

function meta(id: string, chunks: number, model = 'synthetic', dims = DIMS): DocumentMeta {
  return { id, title: id, metadata: {}, createdAt: new Date(0).toISOString(), chunkCount: chunks, contentHash: '', model, dimensions: dims, chunkSize: 800, chunkOverlap: 120 };
}
function syntheticDoc(d: number, vector: () => Float32Array): StoredDocument {
  return { meta: meta(`doc-${d}`, PER_DOC), chunks: Array.from({ length: PER_DOC }, (_, i) => ({ text: `document ${d} chunk ${i}`, vector: vector() })) };
}

/** Puts `size` chunks, documents 0.. in order; seconds spent in `put` (progress on stderr at large sizes). */
async function load(size: number, put: (doc: StoredDocument) => Promise<unknown>, label: string, from = 0): Promise<number> {
  const vector = corpusVectors();
  let ms = 0;
  const docs = size / PER_DOC;
  for (let d = 0; d < docs; d++) {
    const doc = syntheticDoc(d, vector);
    if (d < from) continue;
    const t0 = performance.now();
    await put(doc);
    ms += performance.now() - t0;
    if (docs >= 100 && (d + 1) % (docs / 10) === 0) log(`  ${label}: ${(d + 1) * PER_DOC} chunks loaded, ${(ms / 1000).toFixed(0)} s in put`);
  }
  return ms / 1000;
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

/** `n` timed searches of limit 10 after 5 untimed ones; the same queries for every engine and size. */
async function latencies(index: RetrievalIndex, n: number, size: number): Promise<{ p50: number; p99: number }> {
  const query = queryVectors(size, QUERY_SEED);
  const stamp = await index.stamp();
  for (let i = 0; i < 5; i++) await index.search(TENANT, query(), { limit: 10, filters: {} }, stamp);
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const q = query();
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
  loadSeconds?: number;
  indexBuildSeconds?: number;
  queries: number;
  p50Ms: number;
  p99Ms: number;
  replicaMemoryMB: number;
  /** pgvector: share of the exact top 10 the engine's answer holds, over RECALL_QUERIES queries. */
  recallAt10?: number;
  /** pgvector: how the timed searches were ranked, by PostgreSQL's scan counters (planOf). */
  plan?: string;
  schema?: string;
  efSearch?: number;
}

async function redisEngine(size: number): Promise<Row> {
  const server = await startRedisServer({ args: ['--maxmemory', '0'] });
  const client = new Redis(server.url, { commandTimeout: 600_000 });
  try {
    const store = new DocumentStore(client, `state:bench-${randomBytes(3).toString('hex')}`, 600_000);
    const loadSeconds = await load(size, (doc) => store.put(TENANT, doc), 'redis');
    gc();
    const before = held();
    const index = new RedisRetrievalIndex(store);
    await index.warmUp();
    gc();
    const replicaMemoryMB = (held() - before) / 1e6;
    const queries = redisQueries(size);
    const { p50, p99 } = await latencies(index, queries, size);
    return { engine: 'redis', chunks: size, loadSeconds, queries, p50Ms: p50, p99Ms: p99, replicaMemoryMB };
  } finally {
    client.disconnect();
    await server.stop();
  }
}

async function admin(): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: DATABASE_URL });
  await c.connect();
  await c.query('SET statement_timeout = 0');
  return c;
}

/** Loads `size` chunks into a new schema, then builds its HNSW index: the schema, load and build seconds. */
async function pgLoad(size: number): Promise<{ schema: string; loadSeconds: number; indexBuildSeconds: number }> {
  const schema = `bench_${randomBytes(4).toString('hex')}`;
  const index = new PgVectorIndex({ connectionString: DATABASE_URL, schema, efSearch: EF_SEARCH[0]!, timeoutMs: 3_600_000, poolSize: 2 });
  const c = await admin();
  const notices: string[] = [];
  c.on('notice', (n) => notices.push(n.message ?? String(n)));
  try {
    const first = corpusVectors();
    const t0 = performance.now();
    await index.put(TENANT, syntheticDoc(0, first));
    // Loading with the HNSW index in place would insert into it row by row; as with any bulk load, it is built after.
    await c.query(`DROP INDEX "${schema}".chunks_embedding_hnsw`);
    const loadSeconds = (performance.now() - t0) / 1000 + (await load(size, (doc) => index.put(TENANT, doc), 'pgvector', 1));
    // The graph built in memory (a build past maintenance_work_mem goes on on disk, many times slower), by the
    // leader and parallel workers.
    await c.query(`SET maintenance_work_mem = '${BUILD_MEM}'`);
    await c.query(`SET max_parallel_maintenance_workers = ${BUILD_WORKERS}`);
    log(`  pgvector: building HNSW${HNSW_WITH ? ` (${HNSW_WITH})` : ''} (maintenance_work_mem ${BUILD_MEM}, ${BUILD_WORKERS} parallel workers)...`);
    const t1 = performance.now();
    await c.query(`CREATE INDEX chunks_embedding_hnsw ON "${schema}".chunks USING hnsw (embedding vector_cosine_ops)${HNSW_WITH ? ` WITH (${HNSW_WITH})` : ''}`);
    const indexBuildSeconds = (performance.now() - t1) / 1000;
    for (const n of notices) log(`  pgvector build NOTICE: ${n}`);
    // Statistics as autovacuum would gather them after the load: the planner chooses HNSW for the tenant by them.
    await c.query(`ANALYZE "${schema}".chunks`);
    await c.query(`ANALYZE "${schema}".documents`);
    return { schema, loadSeconds, indexBuildSeconds };
  } catch (err) {
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    throw err;
  } finally {
    await index.close();
    await c.end();
  }
}

/**
 * Searches a loaded, indexed schema at each ef_search: latency, replica memory, recall@10 against exact search (one
 * sequential scan a query, shared by every ef_search), the plan the searches ran with.
 */
async function pgMeasure(schema: string): Promise<Row[]> {
  const c = await admin();
  try {
    const counted = await c.query<{ n: string; dims: number | null }>(`SELECT count(*) AS n, (SELECT vector_dims(embedding) FROM "${schema}".chunks LIMIT 1) AS dims FROM "${schema}".chunks`);
    const size = Number(counted.rows[0]!.n);
    if (counted.rows[0]!.dims !== DIMS) throw new Error(`schema ${schema} holds ${counted.rows[0]!.dims}-dimension vectors; BENCH_SCALE_VECTORS=${VECTORS} makes ${DIMS}`);
    // Exact top 10: a sequential scan of every chunk (index scans off in this session only).
    await c.query('SET enable_indexscan = off');
    const draw = queryVectors(size, QUERY_SEED + 1);
    const recallQueries: Array<{ v: Float32Array; want: Set<string> }> = [];
    const t0 = performance.now();
    for (let q = 0; q < RECALL_QUERIES; q++) {
      const v = draw();
      const exact = await c.query<{ document_id: string; chunk_index: number }>(
        `SELECT document_id, chunk_index FROM "${schema}".chunks WHERE tenant = $2 ORDER BY embedding <=> $1 LIMIT 10`,
        [toSql(v), TENANT],
      );
      recallQueries.push({ v, want: new Set(exact.rows.map((r) => `${r.document_id}/${r.chunk_index}`)) });
    }
    if (RECALL_QUERIES > 0) log(`  pgvector: exact search ${((performance.now() - t0) / RECALL_QUERIES).toFixed(0)} ms a query (sequential scan)`);
    const rows: Row[] = [];
    for (const efSearch of EF_SEARCH) {
      const index = new PgVectorIndex({ connectionString: DATABASE_URL, schema, efSearch, timeoutMs: 600_000, poolSize: 2 });
      try {
        gc();
        const before = held();
        const { chunks } = await index.warmUp();
        if (chunks === 0) throw new Error(`schema ${schema} holds no chunks`);
        // The warm-up's count and the previous row's recall searches are reported late (an idle backend reports
        // within 10 s): counted before, not against these searches.
        await new Promise((r) => setTimeout(r, 11_000));
        const scansBefore = await scans(c, schema);
        const { p50, p99 } = await latencies(index, QUERIES, size);
        gc();
        const replicaMemoryMB = (held() - before) / 1e6;
        const plan = await planOf(c, schema, scansBefore);
        const stamp = await index.stamp();
        let found = 0;
        for (const { v, want } of recallQueries) {
          const got = await index.search(TENANT, v, { limit: 10, filters: {} }, stamp);
          found += got.hits.filter((h) => want.has(`${h.meta.id}/${h.chunkIndex}`)).length;
        }
        const recallAt10 = RECALL_QUERIES > 0 ? found / (RECALL_QUERIES * 10) : undefined;
        const row: Row = { engine: 'pgvector', chunks, queries: QUERIES, p50Ms: p50, p99Ms: p99, replicaMemoryMB, recallAt10, plan, schema, efSearch };
        log(`  ${JSON.stringify(row)}`);
        rows.push(row);
      } finally {
        await index.close();
      }
    }
    return rows;
  } finally {
    await c.end();
  }
}

/** Sequential scans of a schema's chunks table and scans of its HNSW index, as PostgreSQL counts them. */
async function scans(c: pg.Client, schema: string): Promise<{ seq: number; hnsw: number }> {
  await c.query("SET stats_fetch_consistency = 'none'");
  const { rows } = await c.query<{ seq: string; hnsw: string }>(
    `SELECT t.seq_scan AS seq, coalesce(i.idx_scan, 0) AS hnsw FROM pg_stat_user_tables t
     LEFT JOIN pg_stat_user_indexes i ON i.relid = t.relid AND i.indexrelname = 'chunks_embedding_hnsw'
     WHERE t.schemaname = $1 AND t.relname = 'chunks'`,
    [schema],
  );
  return { seq: Number(rows[0]?.seq ?? 0), hnsw: Number(rows[0]?.hnsw ?? 0) };
}

/**
 * How the timed searches were ranked, read off PostgreSQL's counters (a backend reports them when idle, at most once
 * a second): 'hnsw' (the index only), 'exact' (sequential scans of the table: the planner ranked every chunk), 'mixed'.
 */
async function planOf(c: pg.Client, schema: string, before: { seq: number; hnsw: number }): Promise<string> {
  for (let waited = 0; waited < 15_000; waited += 500) {
    const now = await scans(c, schema);
    const seq = now.seq - before.seq;
    const hnsw = now.hnsw - before.hnsw;
    if (seq > 0 || hnsw >= QUERIES) return seq === 0 ? 'hnsw' : hnsw === 0 ? 'exact' : 'mixed';
    await new Promise((r) => setTimeout(r, 500));
  }
  return 'unknown';
}

async function pgEngine(size: number): Promise<Row[]> {
  const { schema, loadSeconds, indexBuildSeconds } = await pgLoad(size);
  try {
    return (await pgMeasure(schema)).map((r, i) => (i === 0 ? { ...r, loadSeconds, indexBuildSeconds } : r));
  } finally {
    if (KEEP) log(`  pgvector: kept schema ${schema} (BENCH_SCALE_REUSE=${schema} to search it again)`);
    else {
      const c = await admin();
      await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await c.end();
    }
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
    ['pgvector', new PgVectorIndex({ connectionString: DATABASE_URL, schema, efSearch: EF_SEARCH[0]!, timeoutMs: 60_000, poolSize: 2 })],
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
  if (REUSE) {
    log(`pgvector: searching the kept schema ${REUSE}...`);
    rows.push(...(await pgMeasure(REUSE)));
  } else {
    for (const size of SIZES) {
      for (const [name, run] of [['redis', redisEngine], ['pgvector', pgEngine]] as const) {
        if (!ENGINES.includes(name)) continue;
        log(`${name}: ${size} chunks...`);
        const got = await run(size);
        rows.push(...(Array.isArray(got) ? got : [got]));
        if (!Array.isArray(got)) log(`  ${JSON.stringify(got)}`);
      }
    }
  }
  const model = WITH_MODEL && !REUSE ? await modelRow() : undefined;
  const ingest = WITH_MODEL && !REUSE ? await ingestRows() : undefined;
  const f = (n: number | undefined, d = 1) => (n === undefined ? '-' : n.toFixed(d));
  console.log('\n| engine | chunks | load s | HNSW build s | ef_search | queries | search p50 ms | search p99 ms | recall@10 | replica memory MB |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const planNote = r.plan === undefined || r.plan === 'hnsw' ? '' : ` (${r.plan} plan)`;
    const recall = r.recallAt10 === undefined ? (r.engine === 'redis' ? '1 (exact)' : `-${planNote}`) : `${f(r.recallAt10, 3)}${planNote}`;
    console.log(
      `| ${r.engine} | ${r.chunks.toLocaleString('en')} | ${f(r.loadSeconds)} | ${f(r.indexBuildSeconds)} | ${r.efSearch ?? '-'} | ${r.queries} | ${f(r.p50Ms, 2)} | ${f(r.p99Ms, 2)} | ${recall} | ${f(r.replicaMemoryMB, 0)} |`,
    );
  }
  for (const size of SIZES) {
    const [a, b] = [rows.find((r) => r.engine === 'redis' && r.chunks === size), rows.find((r) => r.engine === 'pgvector' && r.chunks === size)];
    if (a && b) console.log(`\n${size.toLocaleString('en')} chunks: pgvector p50 / redis p50 = ${f(b.p50Ms / a.p50Ms, 3)}, p99 ratio ${f(b.p99Ms / a.p99Ms, 3)}`);
  }
  if (model) {
    console.log(
      `\nlocal-use-512: loaded in ${f(model.loadMs, 0)} ms (+${f(model.loadMB, 0)} MB resident; +${f(model.warmMB, 0)} MB once warm), ` +
        `${f(model.batchMsPerText)} ms a sentence in a batch of 64, ${f(model.singleMsPerText)} ms one at a time`,
    );
  }
  if (ingest) {
    console.log('\n| ingest with local-use-512 | chunks/s | share of time embedding |');
    console.log('|---|---|---|');
    for (const r of ingest) console.log(`| ${r.engine} | ${f(r.chunksPerSecond, 0)} | ${f(r.embedShare * 100, 0)} % |`);
  }
  const schemas = [...new Set(rows.filter((r) => r.schema && (KEEP || REUSE)).map((r) => r.schema))];
  if (schemas.length) console.log(`\nkept pgvector schema(s): ${schemas.join(', ')}`);
  console.log(
    `\n${VECTORS === 'lowrank' ? `${DIMS} dimensions, rank-${RANK} vectors` : `embedding-like ${DIMS}-dimension vectors (synthetic.ts EMBEDDING_SHAPE)`}, limit 10, recall over ${RECALL_QUERIES} queries against a sequential scan` +
      `${REUSE ? '' : `, HNSW ${HNSW_WITH || 'm=16,ef_construction=64'} built with maintenance_work_mem ${BUILD_MEM} and ${BUILD_WORKERS} parallel workers`}; machine: ${process.arch}, ` +
      `${availableParallelism()} cores, node ${process.version}`,
  );
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    log(String((err as Error)?.stack ?? err));
    process.exit(1);
  },
);
