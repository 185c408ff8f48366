import { BaseConfig, ConfigError, loadConfig as kitLoadConfig } from '@aicache/service-kit';
import { Type, type Static } from 'typebox';
import { JobsConfig } from '@aicache/jobs';
import { BUILD_MEMORY } from './domain/pgvector-index.js';

export const ConfigSchema = Type.Object({
  ...BaseConfig.properties,
  PORT: Type.Integer({ default: 8002, minimum: 0, maximum: 65535 }),
  SERVICE_NAME: Type.String({ default: 'retrieval-proxy', minLength: 1 }),
  REDIS_DB_RETRIEVAL_PROXY: Type.Integer({ default: 1, minimum: 0, maximum: 15 }),
  CACHE_TTL_SEARCH_RESULTS: Type.Optional(Type.Integer({ minimum: 1, description: 'seconds; default 3600' })),
  CACHE_TTL_CONTEXT_BUNDLES: Type.Optional(Type.Integer({ minimum: 1, description: 'seconds; default 1800' })),
  CACHE_L1_MAX_BYTES_SEARCH_RESULTS: Type.Optional(Type.Integer({ minimum: 0, description: 'bytes of an in-process L1 tier; unset or 0 = none' })),
  CACHE_L1_MAX_BYTES_CONTEXT_BUNDLES: Type.Optional(Type.Integer({ minimum: 0, description: 'bytes of an in-process L1 tier; unset or 0 = none' })),
  MULTIMODAL_WORKER_URL: Type.String({ default: 'http://127.0.0.1:8001', pattern: '^https?://' }),
  /**
   * Embedding model asked of the worker; unset = the worker's default. It seeds an empty index: once the index holds
   * vectors, its active model (set by the first ingest, moved only by a re-embed job) is what queries and ingests use,
   * and a different value here only draws a warning at boot. Part of every cache key.
   */
  RETRIEVAL_EMBEDDINGS_MODEL: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  /** Where documents are indexed: 'redis' (the state Redis, searched exactly in each process) or 'pgvector' (PostgreSQL + pgvector, HNSW). */
  RETRIEVAL_INDEX: Type.Union([Type.Literal('redis'), Type.Literal('pgvector')], { default: 'redis' }),
  /** PostgreSQL with the pgvector extension, for RETRIEVAL_INDEX=pgvector: postgres://user:password@host:5432/db */
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://', maxLength: 2000 })),
  /** The PostgreSQL schema that holds the index's tables (made at boot). */
  RETRIEVAL_PG_SCHEMA: Type.String({ default: 'retrieval', pattern: '^[a-z_][a-z0-9_]{0,62}$' }),
  /**
   * hnsw.ef_search: HNSW candidates kept per search (recall vs speed). 100: on a corpus shaped like local-use-512's
   * embeddings it finds 0.99 / 0.91 / 0.66 of the exact top 10 at 10k / 100k / 1M chunks, against 0.93 / 0.76 / 0.47
   * at 40, for 1.5-1.8x the search time (BENCHMARKS.md, "Retrieval at scale"). Toward 1M chunks: 300 with the graph
   * m 32 / ef_construction 128 (0.97 at 33 ms p99, PostgreSQL's shared_buffers holding the index).
   */
  RETRIEVAL_PG_EF_SEARCH: Type.Integer({ default: 100, minimum: 1, maximum: 1000 }),
  /**
   * Hybrid ranking by default (pgvector only): every search and context request that does not say `hybrid` fuses the
   * vector ranking with a full-text one. A request's `hybrid` overrides it either way.
   */
  RETRIEVAL_HYBRID: Type.Boolean({ default: false }),
  RETRIEVAL_PG_POOL_SIZE: Type.Integer({ default: 10, minimum: 1, maximum: 100 }),
  /** The HNSW graph a new index is built with (the first ingest's, a re-embed's): neighbours per node, 2-100. */
  RETRIEVAL_PG_HNSW_M: Type.Integer({ default: 16, minimum: 2, maximum: 100 }),
  /** Candidates kept while building, 4-1000 and at least twice RETRIEVAL_PG_HNSW_M. */
  RETRIEVAL_PG_HNSW_EF_CONSTRUCTION: Type.Integer({ default: 64, minimum: 4, maximum: 1000 }),
  /**
   * maintenance_work_mem of the HNSW index a re-embed builds (e.g. 8GB; unset: the server's, 64 MB by default). The
   * graph is built in memory while it fits, on disk many times slower after (8 GB held the 1M-chunk, 512-dimension
   * graphs measured, m 16 and m 32).
   * Under Docker, PostgreSQL's shm_size must be at least this for a parallel build.
   */
  RETRIEVAL_PG_BUILD_MEMORY: Type.Optional(Type.String({ pattern: BUILD_MEMORY.source })),
  /** Ingest/delete/search refuse to wait longer than this for the state Redis (503 STATE_UNAVAILABLE). */
  STATE_TIMEOUT_MS: Type.Integer({ default: 5000, minimum: 1 }),
  /** Upper bound of chunks one document may produce (all are embedded in one worker call; the worker takes 2048 inputs). */
  MAX_CHUNKS_PER_DOCUMENT: Type.Integer({ default: 2048, minimum: 1, maximum: 2048 }),
  /** Timeout of the one embeddings call of an ingest (up to 2048 chunks); queries use PEER_TIMEOUT_MS. */
  INGEST_EMBED_TIMEOUT_MS: Type.Integer({ default: 60_000, minimum: 1 }),
  /** Body limit of POST /api/v1/documents only (a 1 MB text grows when JSON-escaped). */
  DOCUMENT_BODY_LIMIT_BYTES: Type.Integer({ default: 4 * 1024 * 1024, minimum: 1024 }),
  ...JobsConfig.properties,
  /** Documents one bulk ingest job may carry, and the body limit of its start route. */
  JOBS_INGEST_MAX_DOCUMENTS: Type.Integer({ default: 10_000, minimum: 1, maximum: 100_000 }),
  JOBS_INGEST_BODY_LIMIT_BYTES: Type.Integer({ default: 16 * 1024 * 1024, minimum: 1024 }),
  /** Interval (ms) of the scheduled housekeeping jobs, run once per interval across all replicas; 0 turns them off. */
  JOBS_HOUSEKEEPING_INTERVAL_MS: Type.Integer({ default: 300_000, minimum: 0 }),
  /** Per job, instead of JOBS_HOUSEKEEPING_INTERVAL_MS (0 turns that one off). */
  JOBS_STATS_SNAPSHOT_INTERVAL_MS: Type.Optional(Type.Integer({ minimum: 0 })),
  JOBS_CLEANUP_INTERVAL_MS: Type.Optional(Type.Integer({ minimum: 0 })),
  /** Stats snapshots kept in the history stream (about: Redis trims whole stream nodes); 2016 = a week at 5 min. */
  JOBS_STATS_SNAPSHOT_KEEP: Type.Integer({ default: 2016, minimum: 1, maximum: 1_000_000 }),
});
export type Config = Static<typeof ConfigSchema>;

export function loadConfig(env?: Record<string, string | undefined>): Config {
  const config = kitLoadConfig(ConfigSchema, env ? { env } : {});
  if (config.RETRIEVAL_INDEX === 'pgvector' && !config.DATABASE_URL) {
    throw new ConfigError([{ variable: 'DATABASE_URL', message: 'is required with RETRIEVAL_INDEX=pgvector (postgres://user:password@host:5432/db)' }]);
  }
  if (config.RETRIEVAL_HYBRID && config.RETRIEVAL_INDEX !== 'pgvector') {
    throw new ConfigError([{ variable: 'RETRIEVAL_HYBRID', message: 'needs RETRIEVAL_INDEX=pgvector (hybrid ranking uses PostgreSQL full-text search)' }]);
  }
  if (config.RETRIEVAL_PG_HNSW_EF_CONSTRUCTION < 2 * config.RETRIEVAL_PG_HNSW_M) {
    throw new ConfigError([
      { variable: 'RETRIEVAL_PG_HNSW_EF_CONSTRUCTION', message: `must be at least twice RETRIEVAL_PG_HNSW_M (${config.RETRIEVAL_PG_HNSW_M}), as pgvector requires` },
    ]);
  }
  return config;
}
