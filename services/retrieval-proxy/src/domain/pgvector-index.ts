import { errors, redactUrl, StateUnavailable } from '@aicache/service-kit';
import pg from 'pg';
import type { Hit, SearchOptions, SearchOutcome } from './corpus-index.js';
import { chunkIdentity, ModelChanged, type CorpusStamp, type DocumentMeta, type ReembedState, type StoredDocument } from './document-store.js';
import type { FilterValue } from './filters.js';
import type { DocRef, IndexInfo, Reembeddable, ReembedDoc, RetrievalIndex } from './retrieval-index.js';

export interface PgVectorOptions {
  /** postgres://user:password@host:port/db */
  connectionString: string;
  /** The PostgreSQL schema holding this proxy's tables (one per deployment; tests use their own). */
  schema: string;
  /** hnsw.ef_search: candidates the HNSW scan keeps; higher = better recall, slower. */
  efSearch: number;
  /** Bound of every statement, ms (statement_timeout and the pool's connection timeout). */
  timeoutMs: number;
  /** Connections per proxy process. */
  poolSize: number;
  /**
   * The HNSW graph an index is built with (pgvector's defaults: m 16, ef_construction 64). A larger graph keeps
   * recall up on a large corpus at the same ef_search, and takes longer to build. Applies to an index built from now
   * on: the first ingest's, and a re-embed's new one; `GET /api/v1/index` says what the index in use was built with.
   */
  hnsw?: HnswBuild;
  /**
   * maintenance_work_mem of the HNSW builds this proxy runs (a re-embed's new index), e.g. '8GB'; the server's setting
   * when unset. pgvector builds the graph in memory while it fits, and on disk, many times slower, once it outgrows
   * it (8 GB held the 1M-chunk, 512-dimension graphs measured, m 16 and m 32).
   */
  buildMemory?: string;
  /** Told when such a build outgrew its memory and went on on disk (pgvector's NOTICE, with what to change). */
  warn?: (message: string) => void;
  /**
   * From how many chunks of a tenant an unfiltered search is kept on the HNSW index whatever the planner estimates
   * (INDEX_FROM_CHUNKS); fewer are left to the planner, which may rank them exactly. Tests lower it.
   */
  indexFromChunks?: number;
}

export interface HnswBuild {
  /** Neighbours per node (pgvector: 2-100). */
  m: number;
  /** Candidates kept while building (pgvector: 4-1000, at least 2 m). */
  efConstruction: number;
}

export const DEFAULT_HNSW: HnswBuild = { m: 16, efConstruction: 64 };

/** The build's parameters checked as pgvector would check them, so a bad setting fails at boot, not at the first ingest. */
export function checkHnswBuild(h: HnswBuild): HnswBuild {
  if (!Number.isInteger(h.m) || h.m < 2 || h.m > 100) throw new RangeError(`HNSW m (RETRIEVAL_PG_HNSW_M) must be an integer from 2 to 100, got ${h.m}`);
  if (!Number.isInteger(h.efConstruction) || h.efConstruction < 4 || h.efConstruction > 1000) {
    throw new RangeError(`HNSW ef_construction (RETRIEVAL_PG_HNSW_EF_CONSTRUCTION) must be an integer from 4 to 1000, got ${h.efConstruction}`);
  }
  if (h.efConstruction < 2 * h.m) throw new RangeError(`HNSW ef_construction (RETRIEVAL_PG_HNSW_EF_CONSTRUCTION, ${h.efConstruction}) must be at least twice m (RETRIEVAL_PG_HNSW_M, ${h.m})`);
  return h;
}

/** `USING hnsw (...) WITH (...)` of an index on `table`'s embedding column. */
function hnswIndexSql(schema: string, name: string, table: string, h: HnswBuild): string {
  return `CREATE INDEX IF NOT EXISTS ${name} ON ${schema}.${table} USING hnsw (embedding vector_cosine_ops) WITH (m = ${h.m}, ef_construction = ${h.efConstruction})`;
}

/** A PostgreSQL memory setting as RETRIEVAL_PG_BUILD_MEMORY takes it: an integer and kB, MB or GB. */
export const BUILD_MEMORY = /^[1-9][0-9]{0,6}(kB|MB|GB)$/;

/** The build parameters of an index from its pg_class.reloptions ('m=16', 'ef_construction=64'); pgvector's defaults where unset. */
function hnswOf(reloptions: string[] | null): HnswBuild {
  const opt = (name: string) => reloptions?.find((o) => o.startsWith(`${name}=`))?.slice(name.length + 1);
  return { m: Number(opt('m') ?? DEFAULT_HNSW.m), efConstruction: Number(opt('ef_construction') ?? DEFAULT_HNSW.efConstruction) };
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * The text search configuration of the full-text column and of hybrid queries. 'english' (stemmed, stop words left
 * out) ranked the labeled set's passages better than 'simple' on full text alone (any of the query's words): recall@5
 * 0.29 against 0.14-0.15.
 */
export const TEXT_SEARCH_CONFIG = 'english';
/** A chunk's full text, as every write stores it beside the chunk. */
const toTsvector = (text: string) => `to_tsvector('${TEXT_SEARCH_CONFIG}', ${text})`;

/** Reciprocal Rank Fusion's k: a chunk's fused score is the sum of 1 / (k + rank) over the rankings that hold it. */
export const RRF_K = 60;

/** How deep each ranking of a hybrid search goes: the top max(HYBRID_DEPTH, 2 × limit) of each is fused. */
export const HYBRID_DEPTH = 40;

/**
 * The query as full text, read as a web search box reads it (websearch_to_tsquery): every word (stemmed, stop words
 * left out), "quoted phrases" as phrases, `or` between alternatives, `-word` excluded. Every word, not any: on the
 * labeled set's paraphrased questions any-word matching put a passage sharing a common word with the question in the
 * full-text list of nearly every query, and the fusion then pushed the semantic model's right answer down (recall@5
 * 0.94 to 0.67); with every word it leaves those answers as they were and still finds exact identifiers.
 */
const fullTextQuery = (param: string) => `websearch_to_tsquery('${TEXT_SEARCH_CONFIG}', ${param})`;

/**
 * Migrations, in order, run at boot under an advisory lock (replicas booting together migrate once). The vector
 * column gets its dimension, and the HNSW index is made, by the first ingest: the dimension comes from the model.
 * Exported for the upgrade tests, which lay out a schema as an older release left it.
 */
export const MIGRATIONS: ReadonlyArray<(s: string) => string> = [
  (s) => `
    CREATE EXTENSION IF NOT EXISTS vector;
    CREATE TABLE ${s}.corpus (
      id int PRIMARY KEY CHECK (id = 1),
      epoch text NOT NULL,
      version bigint NOT NULL,
      dimensions int,
      model text
    );
    INSERT INTO ${s}.corpus VALUES (1, substr(md5(random()::text || clock_timestamp()::text), 1, 16), 0, NULL, NULL);
    CREATE TABLE ${s}.documents (
      id text PRIMARY KEY,
      meta jsonb NOT NULL,
      source text,
      metadata jsonb NOT NULL
    );
    CREATE TABLE ${s}.chunks (
      document_id text NOT NULL REFERENCES ${s}.documents (id) ON DELETE CASCADE,
      chunk_index int NOT NULL,
      text text NOT NULL,
      embedding vector NOT NULL,
      PRIMARY KEY (document_id, chunk_index)
    );
    CREATE INDEX documents_metadata ON ${s}.documents USING gin (metadata jsonb_path_ops);`,
  // How many chunks there are, kept by every write: an unfiltered search's total without counting them.
  (s) => `
    ALTER TABLE ${s}.corpus ADD COLUMN chunks bigint NOT NULL DEFAULT 0;
    UPDATE ${s}.corpus SET chunks = (SELECT count(*) FROM ${s}.chunks);`,
  // Tenants: every document and chunk belongs to one, ids are per tenant. Rows stored before belong to 'default'.
  // The chunks carry the tenant too (kept equal to their document's by the foreign key), so a search filters the
  // chunks themselves, through their primary key's leading column or within the HNSW scan, before taking the top k.
  // Each tenant's chunk count is kept, as the corpus's is, for an unfiltered search's total. The planner picks between
  // the two by the tenant column's statistics (HNSW for a tenant holding much of the corpus, the exact scan of its
  // rows for a small one): they are gathered at once, not left to autovacuum, so an upgraded corpus is not searched
  // exactly until then.
  (s) => `
    ALTER TABLE ${s}.documents ADD COLUMN tenant text NOT NULL DEFAULT 'default';
    ALTER TABLE ${s}.chunks ADD COLUMN tenant text NOT NULL DEFAULT 'default';
    ALTER TABLE ${s}.chunks DROP CONSTRAINT chunks_document_id_fkey, DROP CONSTRAINT chunks_pkey;
    ALTER TABLE ${s}.documents DROP CONSTRAINT documents_pkey, ADD CONSTRAINT documents_pkey PRIMARY KEY (tenant, id);
    ALTER TABLE ${s}.chunks
      ADD CONSTRAINT chunks_pkey PRIMARY KEY (tenant, document_id, chunk_index),
      ADD CONSTRAINT chunks_document_fkey FOREIGN KEY (tenant, document_id) REFERENCES ${s}.documents (tenant, id) ON DELETE CASCADE;
    CREATE TABLE ${s}.tenants (tenant text PRIMARY KEY, chunks bigint NOT NULL DEFAULT 0);
    INSERT INTO ${s}.tenants (tenant, chunks) SELECT tenant, count(*) FROM ${s}.chunks GROUP BY tenant;
    ANALYZE ${s}.documents;
    ANALYZE ${s}.chunks;`,
  // A re-embed under way: {job, model, dimensions}; its vectors are staged in chunks_next until the switch.
  (s) => `ALTER TABLE ${s}.corpus ADD COLUMN reembed jsonb;`,
  // Full text of every chunk, for hybrid ranking: a tsvector column with a GIN index, written with the chunk by every
  // write. A nullable column without a default is added without rewriting the table (a generated column would rewrite
  // it, and rebuild its HNSW index with it: about an HNSW build's time on a large corpus, with searches waiting).
  // Chunks stored before get theirs when re-ingested or re-embedded (a re-embed to the same model fills them all);
  // until then full text does not find them, and a hybrid search ranks them by vector alone. A re-embed's staging
  // table made by an older release gets the column too, so the table it puts in place of chunks has it.
  (s) => `
    ALTER TABLE ${s}.chunks ADD COLUMN tsv tsvector;
    CREATE INDEX chunks_tsv ON ${s}.chunks USING gin (tsv);
    ALTER TABLE IF EXISTS ${s}.chunks_next ADD COLUMN IF NOT EXISTS tsv tsvector;`,
  // The corpus version of each tenant's last write (and of the last re-embed's switch): what the tenant's cached
  // answers are keyed by, so other tenants' writes leave them valid. NULL until the tenant writes again: the corpus
  // version stands in, as it did for every tenant before.
  (s) => `ALTER TABLE ${s}.tenants ADD COLUMN version bigint;`,
];

const toSql = (v: Float32Array): string => `[${Array.from(v).join(',')}]`;
const fromSql = (text: string): Float32Array => Float32Array.from(text.slice(1, -1).split(','), Number);

/** pgvector's bound of hnsw.ef_search. */
const MAX_EF_SEARCH = 1000;

/**
 * pgvector's cost estimate of an HNSW scan grows with m × ef_search, and past a point PostgreSQL's planner ranks every
 * chunk of the tenant exactly instead (a scan and a sort): at 100k chunks with m 32, ef_search 300 took 155 ms that way
 * against 18 ms through the index at 200. From this many chunks of a tenant an unfiltered search whose candidate list
 * the index can serve is kept on the index (sorts priced out, as enable_sort = off does); below it, ranking exactly
 * costs little and the planner chooses.
 */
export const INDEX_FROM_CHUNKS = 20_000;

/**
 * The HNSW candidate list for a search among one tenant's chunks: `ef` over a corpus that is all the tenant's, and
 * as many times more as the corpus is larger than the tenant's share of it, since only that share of the candidates
 * the scan gathers pass the tenant filter (bounded by pgvector's maximum). Without it a tenant holding half the
 * corpus ranks among half the candidates, at a recall lower than a tenant alone in its corpus gets. A tenant small
 * enough for this to reach the bound is usually ranked exactly by the planner (its rows through the primary key).
 */
export function tenantEfSearch(ef: number, tenantChunks: number, corpusChunks: number): number {
  return Math.min(MAX_EF_SEARCH, scaledEf(ef, tenantChunks, corpusChunks));
}

/** tenantEfSearch before pgvector's bound. */
function scaledEf(ef: number, tenantChunks: number, corpusChunks: number): number {
  return tenantChunks <= 0 || corpusChunks <= tenantChunks ? ef : Math.ceil((ef * corpusChunks) / tenantChunks);
}

/** Whether a PostgreSQL can hold this index: it answers, and it offers the vector extension. */
export interface PgVectorAvailability {
  answers: boolean;
  vector: boolean;
  /** Why it cannot ('' when it can), with its address, the password masked. */
  reason: string;
}

/** Asks the PostgreSQL at `connectionString` whether it can hold this index (for tests and tools that go without it). */
export async function pgVectorAvailability(connectionString: string, timeoutMs = 2000): Promise<PgVectorAvailability> {
  const c = new pg.Client({ connectionString, connectionTimeoutMillis: timeoutMs });
  try {
    await c.connect();
  } catch (err) {
    await c.end().catch(() => undefined);
    return { answers: false, vector: false, reason: `PostgreSQL at ${redactUrl(connectionString)} does not answer (${(err as Error).message})` };
  }
  try {
    const { rows } = await c.query("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'");
    return rows.length
      ? { answers: true, vector: true, reason: '' }
      : { answers: true, vector: false, reason: 'the pgvector extension is not installed: run infra/scripts/install-pgvector.sh' };
  } catch (err) {
    return { answers: true, vector: false, reason: `PostgreSQL at ${redactUrl(connectionString)} cannot list its extensions (${(err as Error).message})` };
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Connection trouble (as opposed to a statement PostgreSQL refused): 503, retry later. */
function unavailable(err: unknown): boolean {
  const code = (err as { code?: string })?.code ?? '';
  return !/^[0-9A-Z]{5}$/.test(code) || code.startsWith('08') || code === '57P01' || code === '57014' || code === '53300';
}

/**
 * The document index on PostgreSQL + pgvector: documents and chunks in tables of their own schema, ranked by
 * the HNSW index (cosine), filters in SQL, every write one transaction that also moves the corpus stamp. Nothing of
 * the corpus is held in the process: a replica's memory does not grow with it. Every statement on documents or
 * chunks names the tenant (`WHERE tenant = $n`): rows are keyed (tenant, id).
 */
export class PgVectorIndex implements RetrievalIndex {
  readonly engine = 'pgvector';
  private readonly pool: pg.Pool;
  private readonly s: string;
  private migrated: Promise<void> | undefined;
  private last: CorpusStamp | undefined;
  readonly reembed: Reembeddable;
  /** The graph a new HNSW index is built with. */
  readonly hnsw: HnswBuild;
  /** maintenance_work_mem of the HNSW builds this proxy runs (undefined: the server's). */
  readonly buildMemory: string | undefined;
  readonly warn: ((message: string) => void) | undefined;

  constructor(private readonly opts: PgVectorOptions) {
    if (!SCHEMA_NAME.test(opts.schema)) throw new Error(`pgvector schema must be a lower-case SQL identifier, got ${JSON.stringify(opts.schema)}`);
    this.s = `"${opts.schema}"`;
    this.hnsw = checkHnswBuild(opts.hnsw ?? DEFAULT_HNSW);
    if (opts.buildMemory !== undefined && !BUILD_MEMORY.test(opts.buildMemory)) {
      throw new RangeError(`HNSW build memory (RETRIEVAL_PG_BUILD_MEMORY) must be a size such as 512MB or 4GB, got ${JSON.stringify(opts.buildMemory)}`);
    }
    this.buildMemory = opts.buildMemory;
    this.warn = opts.warn;
    this.pool = new pg.Pool({
      connectionString: opts.connectionString,
      max: opts.poolSize,
      connectionTimeoutMillis: opts.timeoutMs,
      statement_timeout: opts.timeoutMs,
      idleTimeoutMillis: 30_000,
    });
    // An idle connection that breaks (server restart) must not take the process down.
    this.pool.on('error', () => undefined);
    this.reembed = new PgReembed(this, this.s);
  }

  /** Runs `fn` with a connection, after the migrations; PostgreSQL trouble is a 503, nothing half-written. */
  async use<T>(what: string, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    await this.migrate();
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw new StateUnavailable(what, `PostgreSQL does not answer (${redactUrl((err as Error).message)})`);
    }
    try {
      return await fn(client);
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode) throw err;
      if (unavailable(err)) throw new StateUnavailable(what, `PostgreSQL failed (${redactUrl((err as Error).message)})`);
      throw err;
    } finally {
      client.release();
    }
  }

  /** `first`: a statement sent with the BEGIN, in the same round trip (no parameters). */
  async tx<T>(what: string, fn: (c: pg.PoolClient) => Promise<T>, first?: string): Promise<T> {
    return this.use(what, async (c) => {
      await c.query(first ? `BEGIN; ${first}` : 'BEGIN');
      try {
        const out = await fn(c);
        await c.query('COMMIT');
        return out;
      } catch (err) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
  }

  /** Applies the migrations not yet applied (once per process; again after a failure). */
  migrate(): Promise<void> {
    this.migrated ??= this.runMigrations().catch((err: unknown) => {
      this.migrated = undefined;
      if ((err as { statusCode?: number }).statusCode) throw err;
      throw new StateUnavailable('document index', `PostgreSQL migrations did not run (${redactUrl((err as Error).message)})`);
    });
    return this.migrated;
  }

  private async runMigrations(): Promise<void> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`aicache-retrieval:${this.opts.schema}`]);
      await c.query(`CREATE SCHEMA IF NOT EXISTS ${this.s}`);
      await c.query(`CREATE TABLE IF NOT EXISTS ${this.s}.migrations (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`);
      const { rows } = await c.query<{ v: number | null }>(`SELECT max(version) AS v FROM ${this.s}.migrations`);
      // A migration may take longer than a statement may on a large corpus (3 rebuilds the chunks' keys, 5 builds a GIN
      // index over every chunk).
      if ((rows[0]?.v ?? 0) < MIGRATIONS.length) await c.query('SET LOCAL statement_timeout = 0');
      for (let v = (rows[0]?.v ?? 0) + 1; v <= MIGRATIONS.length; v++) {
        await c.query(MIGRATIONS[v - 1]!(this.s));
        await c.query(`INSERT INTO ${this.s}.migrations (version) VALUES ($1)`, [v]);
      }
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      c.release();
    }
  }

  async size() {
    return this.use('corpus size', async (c) => {
      const { rows } = await c.query<{ documents: string; chunks: string }>(
        `SELECT (SELECT count(*) FROM ${this.s}.documents) AS documents, (SELECT count(*) FROM ${this.s}.chunks) AS chunks`,
      );
      return { documents: Number(rows[0]?.documents ?? 0), chunks: Number(rows[0]?.chunks ?? 0) };
    });
  }

  async warmUp() {
    await this.migrate();
    const { rows } = await this.pool.query<{ documents: string; chunks: string; dimensions: number | null }>(
      `SELECT (SELECT count(*) FROM ${this.s}.documents) AS documents, (SELECT count(*) FROM ${this.s}.chunks) AS chunks, (SELECT dimensions FROM ${this.s}.corpus) AS dimensions`,
    );
    const r = rows[0]!;
    return { documents: Number(r.documents), chunks: Number(r.chunks), dimensions: r.dimensions };
  }

  /** The dimension of the index, set by the first ingest (null before). */
  private async lockCorpus(c: pg.PoolClient): Promise<{ dimensions: number | null; model: string | null }> {
    const { rows } = await c.query<{ dimensions: number | null; model: string | null }>(`SELECT dimensions, model FROM ${this.s}.corpus WHERE id = 1 FOR UPDATE`);
    return rows[0]!;
  }

  /**
   * Moves the stamp, the tenant's version with it, and the chunk counts, the corpus's and the tenant's (by
   * `chunkDelta`), in the write's transaction.
   */
  private async bump(c: pg.PoolClient, tenant: string, chunkDelta: number): Promise<CorpusStamp> {
    const { rows } = await c.query<{ epoch: string; version: string }>(
      `WITH bumped AS (
         UPDATE ${this.s}.corpus SET version = version + 1, chunks = chunks + $1 WHERE id = 1 RETURNING epoch, version
       ), counted AS (
         INSERT INTO ${this.s}.tenants AS t (tenant, chunks, version) SELECT $2, $1, version FROM bumped
         ON CONFLICT (tenant) DO UPDATE SET chunks = t.chunks + EXCLUDED.chunks, version = EXCLUDED.version
       )
       SELECT epoch, version FROM bumped`,
      [chunkDelta, tenant],
    );
    const version = Number(rows[0]!.version);
    return { epoch: rows[0]!.epoch, version, tenantVersion: version };
  }

  private mismatch(have: number, model: string | null, got: number, gotModel: string): Error {
    return errors.Conflict(
      `the pgvector index holds ${have}-dimension vectors${model ? ` (model ${model})` : ''}; model ${gotModel} gives ${got}. ` +
        `Point RETRIEVAL_EMBEDDINGS_MODEL at a model of ${have} dimensions, or use another RETRIEVAL_PG_SCHEMA and ingest again`,
    );
  }

  async put(tenant: string, doc: StoredDocument): Promise<CorpusStamp> {
    const dims = doc.meta.dimensions;
    return this.tx('document write', async (c) => {
      const corpus = await this.lockCorpus(c);
      if (corpus.dimensions === null) {
        // First ingest: the column takes the model's dimension, and the HNSW index can be made.
        await c.query(`ALTER TABLE ${this.s}.chunks ALTER COLUMN embedding TYPE vector(${dims})`);
        await c.query(hnswIndexSql(this.s, 'chunks_embedding_hnsw', 'chunks', this.hnsw));
        await c.query(`UPDATE ${this.s}.corpus SET dimensions = $1, model = $2 WHERE id = 1`, [dims, doc.meta.model]);
      } else if (corpus.dimensions !== dims) {
        // Named with the active model: when the service asked for another (a re-embed switched since), it embeds again.
        throw Object.assign(this.mismatch(corpus.dimensions, corpus.model, dims, doc.meta.model), corpus.model ? { active: corpus.model } : {});
      } else if (corpus.model !== null && corpus.model !== doc.meta.model) {
        throw new ModelChanged(corpus.model, doc.meta.model);
      }
      const old = await c.query<{ n: number }>(
        `DELETE FROM ${this.s}.documents WHERE tenant = $1 AND id = $2 RETURNING (meta->>'chunkCount')::int AS n`,
        [tenant, doc.meta.id],
      );
      await c.query(`INSERT INTO ${this.s}.documents (tenant, id, meta, source, metadata) VALUES ($1, $2, $3, $4, $5)`, [
        tenant,
        doc.meta.id,
        JSON.stringify(doc.meta),
        doc.meta.source ?? null,
        JSON.stringify(doc.meta.metadata),
      ]);
      await c.query(
        `INSERT INTO ${this.s}.chunks (tenant, document_id, chunk_index, text, embedding, tsv)
         SELECT $1, $2, i - 1, t, e::vector, ${toTsvector('t')} FROM unnest($3::text[], $4::text[]) WITH ORDINALITY AS u(t, e, i)`,
        [tenant, doc.meta.id, doc.chunks.map((ch) => ch.text), doc.chunks.map((ch) => toSql(ch.vector))],
      );
      return this.bump(c, tenant, doc.chunks.length - (old.rows[0]?.n ?? 0));
    });
  }

  async delete(tenant: string, id: string): Promise<CorpusStamp | undefined> {
    return this.tx('document delete', async (c) => {
      await this.lockCorpus(c);
      const { rows } = await c.query<{ n: number }>(
        `DELETE FROM ${this.s}.documents WHERE tenant = $1 AND id = $2 RETURNING (meta->>'chunkCount')::int AS n`,
        [tenant, id],
      );
      if (rows.length === 0) return undefined;
      return this.bump(c, tenant, -rows[0]!.n);
    });
  }

  async get(tenant: string, id: string): Promise<StoredDocument | undefined> {
    return this.use('document read', async (c) => {
      const doc = await c.query<{ meta: DocumentMeta }>(`SELECT meta FROM ${this.s}.documents WHERE tenant = $1 AND id = $2`, [tenant, id]);
      if (doc.rowCount === 0) return undefined;
      const chunks = await c.query<{ text: string; embedding: string }>(
        `SELECT text, embedding::text AS embedding FROM ${this.s}.chunks WHERE tenant = $1 AND document_id = $2 ORDER BY chunk_index`,
        [tenant, id],
      );
      return { meta: doc.rows[0]!.meta, chunks: chunks.rows.map((r) => ({ text: r.text, vector: fromSql(r.embedding) })) };
    });
  }

  async list(tenant: string, offset: number, limit: number) {
    return this.use('document list', async (c) => {
      const [total, page] = await Promise.all([
        c.query<{ n: string }>(`SELECT count(*) AS n FROM ${this.s}.documents WHERE tenant = $1`, [tenant]),
        c.query<{ meta: DocumentMeta }>(`SELECT meta FROM ${this.s}.documents WHERE tenant = $1 ORDER BY id COLLATE "C" LIMIT $2 OFFSET $3`, [
          tenant,
          limit,
          offset,
        ]),
      ]);
      return { total: Number(total.rows[0]!.n), documents: page.rows.map((r) => r.meta) };
    });
  }

  async stamp(tenant?: string): Promise<CorpusStamp> {
    const { written, ...stamp } = await this.use('corpus version', async (c) => {
      const { rows } = await c.query<{ epoch: string; version: string; model: string | null; written: string | null }>(
        `SELECT c.epoch, c.version, c.model, t.version AS written FROM ${this.s}.corpus c LEFT JOIN ${this.s}.tenants t ON t.tenant = $1 WHERE c.id = 1`,
        [tenant ?? null],
      );
      const r = rows[0]!;
      return { epoch: r.epoch, version: Number(r.version), ...(r.model ? { model: r.model } : {}), written: r.written };
    });
    // The last stamp stands for the whole corpus (another tenant's request may fall back to it).
    this.last = stamp;
    return written === null ? stamp : { ...stamp, tenantVersion: Number(written) };
  }

  lastStamp(): CorpusStamp | undefined {
    return this.last;
  }

  async info(tenant: string): Promise<IndexInfo> {
    return this.use('index read', async (c) => {
      const { rows } = await c.query<{
        model: string | null;
        dimensions: number | null;
        reembed: IndexInfo['reembed'] | null;
        documents: string;
        chunks: string | null;
        hnsw: string[] | null | undefined;
      }>(
        `SELECT model, dimensions, reembed, (SELECT count(*) FROM ${this.s}.documents WHERE tenant = $1) AS documents,
                (SELECT chunks FROM ${this.s}.tenants WHERE tenant = $1) AS chunks,
                (SELECT coalesce(reloptions, '{}') FROM pg_class WHERE oid = to_regclass($2)) AS hnsw
         FROM ${this.s}.corpus WHERE id = 1`,
        [tenant, `${this.s}.chunks_embedding_hnsw`],
      );
      const r = rows[0]!;
      const built = r.hnsw !== null && r.hnsw !== undefined;
      return {
        engine: this.engine,
        model: r.model,
        dimensions: r.dimensions,
        documents: Number(r.documents),
        chunks: Number(r.chunks ?? 0),
        ...(r.reembed ? { reembed: { job: r.reembed.job, model: r.reembed.model, dimensions: r.reembed.dimensions } } : {}),
        hnsw: { ...(built ? hnswOf(r.hnsw!) : this.hnsw), efSearch: this.opts.efSearch, built },
      };
    });
  }

  async search(tenant: string, query: Float32Array, opts: SearchOptions, stamp?: CorpusStamp): Promise<SearchOutcome> {
    const where: string[] = [];
    // $1 the query, $2 the tenant: the tenant's chunks only, filtered before the limit.
    const params: unknown[] = [toSql(query), tenant];
    const param = (v: unknown) => `$${params.push(v)}`;
    for (const [key, wanted] of Object.entries(opts.filters)) where.push(this.filterSql(key, wanted as FilterValue, param));
    const threshold = opts.scoreThreshold ?? null;
    if (threshold !== null) where.push(`(c.embedding <=> $1) <= ${param(1 - threshold)}`);
    const filter = ['c.tenant = $2', ...where].join(' AND ');
    return this.tx('document search', async (c) => {
      const { rows: corpus } = await c.query<{ dimensions: number | null; model: string | null; chunks: string | null; all: string }>(
        `SELECT dimensions, model, (SELECT chunks FROM ${this.s}.tenants WHERE tenant = $1) AS chunks, chunks AS all FROM ${this.s}.corpus WHERE id = 1`,
        [tenant],
      );
      const dims = corpus[0]!.dimensions;
      if (dims === null) return { hits: [], total: 0, skippedDimensionMismatch: 0 };
      // The query was embedded with the model of the stamp read before: a switch since then is not a client error.
      if (stamp && corpus[0]!.model !== null && corpus[0]!.model !== stamp.model) throw new ModelChanged(corpus[0]!.model);
      if (dims !== query.length) throw this.mismatch(dims, corpus[0]!.model, query.length, 'of this query');
      // One round trip for both settings. With filters the index scan goes on until `limit` rows pass them
      // (pgvector 0.8 iterative scans).
      const depth = opts.hybridText === undefined ? opts.limit : Math.max(HYBRID_DEPTH, 2 * opts.limit);
      const tenantChunks = Number(corpus[0]!.chunks ?? 0);
      const allChunks = Number(corpus[0]!.all);
      const wanted = Math.max(this.opts.efSearch, depth);
      const efSearch = tenantEfSearch(wanted, tenantChunks, allChunks);
      // Kept on the index (INDEX_FROM_CHUNKS): a large tenant, no filters, and its candidate list within pgvector's
      // bound (a tenant for whom it is not is better ranked exactly, through the primary key).
      const keepIndex =
        opts.hybridText === undefined &&
        where.length === 0 &&
        tenantChunks >= (this.opts.indexFromChunks ?? INDEX_FROM_CHUNKS) &&
        scaledEf(wanted, tenantChunks, allChunks) <= MAX_EF_SEARCH;
      await c.query(`SET LOCAL hnsw.ef_search = ${efSearch}; SET LOCAL hnsw.iterative_scan = relaxed_order${keepIndex ? '; SET LOCAL enable_sort = off' : ''}`);
      const joined = `FROM ${this.s}.chunks c JOIN ${this.s}.documents d ON d.tenant = c.tenant AND d.id = c.document_id`;
      const from = `${joined} WHERE ${filter}`;
      const counted = params.slice();
      const top = await c.query<{ meta: DocumentMeta; chunk_index: number; text: string; distance: number }>(
        opts.hybridText === undefined
          ? `SELECT d.meta, c.chunk_index, c.text, c.embedding <=> $1 AS distance ${from} ORDER BY c.embedding <=> $1 LIMIT ${param(opts.limit)}`
          : this.hybridSql(joined, filter, param(opts.hybridText), depth, param(opts.limit)),
        params,
      );
      // Without filters or threshold every chunk of the tenant passes: the kept count. Otherwise they are counted.
      const total =
        where.length === 0
          ? Number(corpus[0]!.chunks ?? 0)
          : // Same parameters but the ranking's own; $1 (the query) typed even where only the ranking used it.
            Number((await c.query<{ n: string }>(`SELECT count(*) AS n, $1::vector IS NULL AS unused ${from} GROUP BY 2`, counted)).rows[0]?.n ?? 0);
      const hits: Hit[] = top.rows.map((r) => ({ meta: r.meta, chunkIndex: r.chunk_index, text: r.text, score: Math.max(-1, Math.min(1, 1 - r.distance)) }));
      // Iterative scans may return rows slightly out of order; the answer is ordered as the Redis engine orders it.
      // A hybrid answer comes in its fused order, which the statement gives.
      if (opts.hybridText === undefined) hits.sort((a, b) => b.score - a.score || a.meta.id.localeCompare(b.meta.id) || a.chunkIndex - b.chunkIndex);
      return { hits, total, skippedDimensionMismatch: 0 };
      // The chunks table is locked (shared) before the corpus row is read: a re-embed's switch, which replaces the table,
      // either happened before (the row read says so) or waits for this search to end. Without it a search could read
      // the old model from the row, then rank the new table's vectors.
    }, `LOCK TABLE ${this.s}.chunks IN ACCESS SHARE MODE`);
  }

  /**
   * A hybrid search in one statement: the vector top `depth` (HNSW) and the full-text top `depth` (the GIN index,
   * ts_rank_cd), each through the same tenant, filters and threshold, fused by Reciprocal Rank Fusion (k = RRF_K) and
   * cut to the limit. Ties go to the closer vector. Each hit's score stays its cosine similarity.
   */
  private hybridSql(joined: string, filter: string, text: string, depth: number, limit: string): string {
    return `WITH vec AS (
        SELECT c.document_id, c.chunk_index, c.embedding <=> $1 AS distance ${joined} WHERE ${filter}
        ORDER BY c.embedding <=> $1 LIMIT ${depth}
      ), words AS (SELECT ${fullTextQuery(text)} AS q),
      txt AS (
        SELECT c.document_id, c.chunk_index, ts_rank_cd(c.tsv, words.q) AS rank ${joined} CROSS JOIN words
        WHERE ${filter} AND c.tsv @@ words.q
        ORDER BY rank DESC, c.document_id, c.chunk_index LIMIT ${depth}
      ), ranked AS (
        SELECT document_id, chunk_index, row_number() OVER (ORDER BY distance, document_id, chunk_index) AS r FROM vec
        UNION ALL
        SELECT document_id, chunk_index, row_number() OVER (ORDER BY rank DESC, document_id, chunk_index) AS r FROM txt
      ), fused AS (
        SELECT document_id, chunk_index, sum(1.0 / (${RRF_K} + r)) AS rrf FROM ranked GROUP BY document_id, chunk_index
      )
      SELECT d.meta, c.chunk_index, c.text, c.embedding <=> $1 AS distance
      FROM fused f
      JOIN ${this.s}.chunks c ON c.tenant = $2 AND c.document_id = f.document_id AND c.chunk_index = f.chunk_index
      JOIN ${this.s}.documents d ON d.tenant = c.tenant AND d.id = c.document_id
      ORDER BY f.rrf DESC, distance, d.id COLLATE "C", c.chunk_index
      LIMIT ${limit}`;
  }

  /** One filter as SQL with the semantics of matchesFilters: any-of, typed equality, string[] values match any element. */
  private filterSql(key: string, wanted: FilterValue, param: (v: unknown) => string): string {
    const values = Array.isArray(wanted) ? wanted : [wanted];
    if (key === 'documentId' || key === 'source') {
      const column = key === 'documentId' ? 'd.id' : 'd.source';
      const strings = values.filter((v): v is string => typeof v === 'string');
      return strings.length ? `${column} = ANY(${param(strings)}::text[])` : 'false';
    }
    const json = param(values.map((v) => JSON.stringify(v)));
    const k = param(key);
    return `(d.metadata -> ${k} = ANY(${json}::jsonb[]) OR (jsonb_typeof(d.metadata -> ${k}) = 'array' AND EXISTS (SELECT 1 FROM jsonb_array_elements(d.metadata -> ${k}) e WHERE e = ANY(${json}::jsonb[]))))`;
  }

  /** Ready to serve: migrated, and PostgreSQL answers. */
  async ready(): Promise<boolean> {
    try {
      await this.migrate();
      await this.pool.query('SELECT 1');
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/**
 * pgvector's re-embed: the new vectors (with the chunk texts) go to a table of their own, chunks_next, whose vector
 * column has the new model's dimension; its rows reference their document with ON DELETE CASCADE, so a document
 * re-ingested or deleted while the job runs loses its staged rows and is staged again by the catch-up (documents
 * without staged rows). The HNSW index of chunks_next is built once it is filled; the switch, in one transaction
 * holding the corpus row (which every write takes first), checks that every document is staged, then puts chunks_next
 * in place of chunks, moves the model and the version. Stages take the corpus row FOR SHARE: they never interleave
 * with a write.
 */
class PgReembed implements Reembeddable {
  constructor(
    private readonly index: PgVectorIndex,
    private readonly s: string,
  ) {}

  async state(): Promise<ReembedState | undefined> {
    return this.index.use('re-embed read', async (c) => {
      const { rows } = await c.query<{ reembed: ReembedState | null }>(`SELECT reembed FROM ${this.s}.corpus WHERE id = 1`);
      return rows[0]?.reembed ?? undefined;
    });
  }

  async claim(state: ReembedState) {
    return this.index.tx('re-embed claim', async (c) => {
      const { rows } = await c.query<{ reembed: ReembedState | null }>(`SELECT reembed FROM ${this.s}.corpus WHERE id = 1 FOR UPDATE`);
      const cur = rows[0]?.reembed;
      if (cur?.job === state.job) return { outcome: 'resumed' as const, holder: cur.job };
      if (cur) return { outcome: 'busy' as const, holder: cur.job };
      await c.query(`DROP TABLE IF EXISTS ${this.s}.chunks_next`);
      await c.query(
        `CREATE TABLE ${this.s}.chunks_next (
           tenant text NOT NULL,
           document_id text NOT NULL,
           chunk_index int NOT NULL,
           text text NOT NULL,
           embedding vector(${Number(state.dimensions)}) NOT NULL,
           tsv tsvector,
           CONSTRAINT chunks_next_pkey PRIMARY KEY (tenant, document_id, chunk_index),
           CONSTRAINT chunks_next_document_fkey FOREIGN KEY (tenant, document_id) REFERENCES ${this.s}.documents (tenant, id) ON DELETE CASCADE
         )`,
      );
      await c.query(`UPDATE ${this.s}.corpus SET reembed = $1 WHERE id = 1`, [JSON.stringify(state)]);
      return { outcome: 'claimed' as const, holder: state.job };
    });
  }

  async refs(): Promise<DocRef[]> {
    return this.index.use('re-embed list', async (c) => {
      await c.query('SET statement_timeout = 0');
      try {
        const { rows } = await c.query<{ tenant: string; id: string; n: number }>(
          `SELECT tenant, id, (meta->>'chunkCount')::int AS n FROM ${this.s}.documents ORDER BY tenant COLLATE "C", id COLLATE "C"`,
        );
        return rows.map((r) => ({ tenant: r.tenant, id: r.id, chunks: r.n }));
      } finally {
        await c.query('RESET statement_timeout');
      }
    });
  }

  async load(job: string, refs: Array<{ tenant: string; id: string }>): Promise<ReembedDoc[]> {
    if (refs.length === 0) return [];
    return this.index.use('re-embed read', async (c) => {
      const { rows } = await c.query<{ tenant: string; meta: DocumentMeta; texts: string[]; staged: boolean }>(
        `SELECT d.tenant, d.meta,
                ARRAY(SELECT text FROM ${this.s}.chunks c WHERE c.tenant = d.tenant AND c.document_id = d.id ORDER BY chunk_index) AS texts,
                EXISTS (SELECT 1 FROM ${this.s}.chunks_next n WHERE n.tenant = d.tenant AND n.document_id = d.id) AS staged
         FROM unnest($1::text[], $2::text[]) AS r(tenant, id)
         JOIN ${this.s}.documents d ON d.tenant = r.tenant AND d.id = r.id
         WHERE (SELECT reembed->>'job' FROM ${this.s}.corpus WHERE id = 1) = $3`,
        [refs.map((r) => r.tenant), refs.map((r) => r.id), job],
      );
      return rows.map((r) => ({ tenant: r.tenant, meta: r.meta, texts: r.texts, staged: r.staged }));
    });
  }

  async stage(job: string, tenant: string, meta: DocumentMeta, model: string, vectors: Float32Array[]): Promise<-1 | 0 | 1> {
    return this.index.tx('re-embed stage', async (c) => {
      const { rows } = await c.query<{ job: string | null }>(`SELECT reembed->>'job' AS job FROM ${this.s}.corpus WHERE id = 1 FOR SHARE`);
      if (rows[0]?.job !== job) return -1;
      const doc = await c.query<{ meta: DocumentMeta }>(`SELECT meta FROM ${this.s}.documents WHERE tenant = $1 AND id = $2`, [tenant, meta.id]);
      const now = doc.rows[0]?.meta;
      if (!now || chunkIdentity(now) !== chunkIdentity(meta) || now.chunkCount !== vectors.length) return 0;
      await c.query(`DELETE FROM ${this.s}.chunks_next WHERE tenant = $1 AND document_id = $2`, [tenant, meta.id]);
      await c.query(
        `INSERT INTO ${this.s}.chunks_next (tenant, document_id, chunk_index, text, embedding, tsv)
         SELECT $1, $2, c.chunk_index, c.text, u.e::vector, ${toTsvector('c.text')}
         FROM unnest($3::text[]) WITH ORDINALITY AS u(e, i)
         JOIN ${this.s}.chunks c ON c.tenant = $1 AND c.document_id = $2 AND c.chunk_index = u.i - 1`,
        [tenant, meta.id, vectors.map(toSql)],
      );
      void model;
      return 1;
    });
  }

  async pending(job: string, max: number) {
    return this.index.use('re-embed catch-up', async (c) => {
      const { rows } = await c.query<{ tenant: string; id: string }>(
        `SELECT d.tenant, d.id FROM ${this.s}.documents d
         WHERE (SELECT reembed->>'job' FROM ${this.s}.corpus WHERE id = 1) = $1
           AND NOT EXISTS (SELECT 1 FROM ${this.s}.chunks_next n WHERE n.tenant = d.tenant AND n.document_id = d.id)
         LIMIT $2`,
        [job, max],
      );
      return rows;
    });
  }

  async settle(job: string): Promise<void> {
    await this.index.use('re-embed index build', async (c) => {
      const state = await this.state();
      if (state?.job !== job) return;
      // Built once the table is filled (faster than growing it row by row); a large corpus takes longer than a statement
      // may. In the memory given for it, when given: past the server's (64 MB by default) the graph goes on on disk.
      const memory = this.index.buildMemory;
      const outgrown: string[] = [];
      const onNotice = (n: { message?: string }) => {
        if (/no longer fits into maintenance_work_mem/.test(n.message ?? '')) outgrown.push(n.message!);
      };
      c.on('notice', onNotice);
      await c.query(`SET statement_timeout = 0${memory ? `; SET maintenance_work_mem = '${memory}'` : ''}`);
      try {
        await c.query(hnswIndexSql(this.s, 'chunks_next_embedding_hnsw', 'chunks_next', this.index.hnsw));
        await c.query(`CREATE INDEX IF NOT EXISTS chunks_next_tsv ON ${this.s}.chunks_next USING gin (tsv)`);
        await c.query(`ANALYZE ${this.s}.chunks_next`);
      } finally {
        c.off('notice', onNotice);
        await c.query('RESET statement_timeout; RESET maintenance_work_mem');
      }
      for (const message of outgrown) {
        this.index.warn?.(
          `re-embed: the new HNSW index outgrew its build memory (${memory ?? "the server's maintenance_work_mem"}): "${message}"; it was finished on disk, many times slower. Raise RETRIEVAL_PG_BUILD_MEMORY`,
        );
      }
    });
  }

  async switchModel(job: string) {
    return this.index.tx('re-embed switch', async (c) => {
      await c.query('SET LOCAL statement_timeout = 0');
      const { rows } = await c.query<{ reembed: ReembedState | null }>(`SELECT reembed FROM ${this.s}.corpus WHERE id = 1 FOR UPDATE`);
      const state = rows[0]?.reembed;
      if (state?.job !== job) return { outcome: 'lost' as const };
      const missing = await c.query<{ n: string }>(
        `SELECT count(*) AS n FROM ${this.s}.documents d
         WHERE NOT EXISTS (SELECT 1 FROM ${this.s}.chunks_next n WHERE n.tenant = d.tenant AND n.document_id = d.id)`,
      );
      const count = Number(missing.rows[0]!.n);
      if (count > 0) return { outcome: 'pending' as const, count };
      await c.query(`DROP TABLE ${this.s}.chunks`);
      await c.query(`ALTER TABLE ${this.s}.chunks_next RENAME TO chunks`);
      await c.query(`ALTER TABLE ${this.s}.chunks RENAME CONSTRAINT chunks_next_pkey TO chunks_pkey`);
      await c.query(`ALTER TABLE ${this.s}.chunks RENAME CONSTRAINT chunks_next_document_fkey TO chunks_document_fkey`);
      await c.query(`ALTER INDEX IF EXISTS ${this.s}.chunks_next_embedding_hnsw RENAME TO chunks_embedding_hnsw`);
      await c.query(`ALTER INDEX IF EXISTS ${this.s}.chunks_next_tsv RENAME TO chunks_tsv`);
      // The full-text index, should the staged table lack it (settled by a release before it): no-op otherwise.
      await c.query(`CREATE INDEX IF NOT EXISTS chunks_tsv ON ${this.s}.chunks USING gin (tsv)`);
      await c.query(`UPDATE ${this.s}.documents SET meta = meta || jsonb_build_object('model', $1::text, 'dimensions', $2::int)`, [state.model, state.dimensions]);
      const bumped = await c.query<{ epoch: string; version: string }>(
        `UPDATE ${this.s}.corpus SET model = $1, dimensions = $2, reembed = NULL, version = version + 1 WHERE id = 1 RETURNING epoch, version`,
        [state.model, state.dimensions],
      );
      // Every tenant's vectors (and, to the same model, full text) changed: none of their cached answers stands.
      await c.query(`UPDATE ${this.s}.tenants SET version = $1`, [bumped.rows[0]!.version]);
      return { outcome: 'switched' as const, stamp: { epoch: bumped.rows[0]!.epoch, version: Number(bumped.rows[0]!.version), model: state.model } };
    });
  }

  async abort(job: string): Promise<void> {
    await this.index.tx('re-embed cancel', async (c) => {
      const { rows } = await c.query<{ job: string | null }>(`SELECT reembed->>'job' AS job FROM ${this.s}.corpus WHERE id = 1 FOR UPDATE`);
      if (rows[0]?.job !== job) return;
      await c.query(`DROP TABLE IF EXISTS ${this.s}.chunks_next`);
      await c.query(`UPDATE ${this.s}.corpus SET reembed = NULL WHERE id = 1`);
    });
  }
}
