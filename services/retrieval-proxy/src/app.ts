import { createService, createStateRedis, registerAuth, registerRedis, stateKeyPrefix, stateReplication, type ServiceApp } from '@aicache/service-kit';
import { quitOrDisconnect } from '@aicache/cache';
import { within, type ServiceTokens } from '@aicache/auth';
import { InputStore, inputsKeepSeconds, jobsSettingsOf, queuePrefix, registerJobs } from '@aicache/jobs';
import { mountQueueDashboard } from '@aicache/jobs/dashboard';
import type { RedisClient } from '@aicache/cache';
import type { Redis } from 'ioredis';
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from './config.js';
import { DocumentStore } from './domain/document-store.js';
import { PgVectorIndex } from './domain/pgvector-index.js';
import { RedisRetrievalIndex, type RetrievalIndex } from './domain/retrieval-index.js';
import { WorkerEmbedder, WORKER_PEER, type Embedder } from './domain/embedder.js';
import { RetrievalService } from './domain/retrieval-service.js';
import { cacheAdminRoutes } from './routes/cache-admin.js';
import { contextRoutes } from './routes/context.js';
import { documentRoutes } from './routes/documents.js';
import { searchRoutes } from './routes/search.js';
import { ingestJob } from './routes/ingest-job.js';
import { StatsHistory, housekeepingKinds } from './domain/housekeeping.js';
import { statsHistoryRoutes } from './routes/stats-history.js';
import { reembedJob } from './routes/reembed-job.js';

export const SERVICE = 'retrieval-proxy';
export const VERSION = '0.1.0';
/** The document index's key prefix on one server or a Sentinel set; on a Cluster it is `state:{retrieval-proxy}`. */
export const STATE_PREFIX = `state:${SERVICE}`;

export const CATEGORIES = {
  search_results: { ttl: 3600 },
  context_bundles: { ttl: 1800 },
} as const;

export interface BuildOverrides {
  /** Cache Redis client (left open on close). */
  cacheClient?: Redis;
  /** State Redis client for the document index (left open on close). */
  stateClient?: Redis;
  /** Instead of the multimodal-worker over HTTP. */
  embedder?: Embedder;
  logger?: false | FastifyBaseLogger;
  /** false leaves out the kit's under-pressure 503s (tests on a loaded machine). */
  underPressure?: false;
  /** Admin rate limit; false turns it off (tests). */
  adminRateLimit?: false;
}

export async function buildApp(config: Config, overrides: BuildOverrides = {}): Promise<ServiceApp> {
  const app = await createService({
    name: SERVICE,
    version: VERSION,
    config,
    // Document ids are up to 128 chars and cache patterns up to 200: let the schemas, not the router, judge them.
    fastify: { routerOptions: { maxParamLength: 512 } },
    ...(overrides.logger !== undefined ? { logger: overrides.logger } : {}),
    ...(overrides.underPressure === false ? { underPressure: false as const } : {}),
  });

  try {
    // Before any route: every route but /health, /ready, /metrics and /docs needs a principal.
    const auth = await registerAuth(app, config, { service: SERVICE });
    const redis = await registerRedis(app, config, {
      cache: {
        service: SERVICE,
        categories: CATEGORIES,
        dbVariable: 'REDIS_DB_RETRIEVAL_PROXY',
        defaultDb: 1,
        ...(overrides.cacheClient ? { client: overrides.cacheClient } : {}),
        adminRoutes: cacheAdminRoutes,
        ...(overrides.adminRateLimit === false ? { rateLimit: false as const } : {}),
      },
      // The Redis engine keeps the documents on the state Redis; pgvector needs none.
      ...(config.RETRIEVAL_INDEX === 'redis'
        ? {
            state: {
              db: config.REDIS_DB_RETRIEVAL_PROXY,
              downDetail: 'document index Redis does not answer',
              ...(overrides.stateClient ? { client: overrides.stateClient } : {}),
            },
          }
        : {}),
    });
    const index = makeIndex(app, config, redis.state);

    const ownEmbedder = !overrides.embedder;
    const embedder =
      overrides.embedder ??
      new WorkerEmbedder({
        baseUrl: config.MULTIMODAL_WORKER_URL,
        timeoutMs: config.PEER_TIMEOUT_MS,
        retries: config.PEER_RETRIES,
        model: config.RETRIEVAL_EMBEDDINGS_MODEL,
      });
    if (ownEmbedder) app.addHook('onClose', async () => embedder.close().catch(() => undefined));

    const retrieval = new RetrievalService({
      index,
      embedder,
      searchCache: app.cache.category('search_results'),
      contextCache: app.cache.category('context_bundles'),
      model: config.RETRIEVAL_EMBEDDINGS_MODEL ?? '',
      maxChunksPerDocument: config.MAX_CHUNKS_PER_DOCUMENT,
      hybrid: config.RETRIEVAL_HYBRID,
      ingestTimeoutMs: config.INGEST_EMBED_TIMEOUT_MS,
      logger: app.log,
    });

    // The worker is needed to serve, like the index (the kit's 'state' check); cache trouble only degrades.
    app.addReadinessCheck(WORKER_PEER, async () =>
      (await embedder.ready()) ? { ok: true } : { ok: false, detail: `${config.MULTIMODAL_WORKER_URL}/health does not answer 200` },
    );

    // Loaded in the background; a request arriving first waits for the same load (single flight).
    app.addHook('onReady', async () => void retrieval.warmUp());

    await app.register(documentRoutes, { retrieval, bodyLimit: config.DOCUMENT_BODY_LIMIT_BYTES });
    await app.register(searchRoutes, { retrieval });
    await app.register(contextRoutes, { retrieval });
    if (config.JOBS_ENABLED) await registerJobRoutes(app, config, redis.state, retrieval, auth.tokens, overrides.stateClient);
    return app;
  } catch (err) {
    await app.close().catch(() => undefined);
    throw err;
  }
}

/**
 * Background jobs on the state Redis (its own connection when the index is pgvector and no state client is open).
 * An evicting state Redis refuses jobs: the service still serves everything else, and the job routes answer 503 with why.
 */
async function registerJobRoutes(
  app: ServiceApp,
  config: Config,
  state: RedisClient | undefined,
  retrieval: RetrievalService,
  tokens: ServiceTokens,
  stateClient: Redis | undefined,
): Promise<void> {
  let redis = state ?? stateClient;
  if (!redis) {
    const own = createStateRedis(config, { db: config.REDIS_DB_RETRIEVAL_PROXY, logger: app.log });
    app.addHook('onClose', async () => quitOrDisconnect(own));
    redis = own;
  }
  const statsEveryMs = config.JOBS_STATS_SNAPSHOT_INTERVAL_MS ?? config.JOBS_HOUSEKEEPING_INTERVAL_MS;
  const cleanupEveryMs = config.JOBS_CLEANUP_INTERVAL_MS ?? config.JOBS_HOUSEKEEPING_INTERVAL_MS;
  const history = new StatsHistory(redis, `${stateKeyPrefix(SERVICE, redis)}stats:history`, config.JOBS_STATS_SNAPSHOT_KEEP);
  const jobsSettings = jobsSettingsOf(config);
  // A bulk ingest's documents live beside its job for as long as it can be retried, and go once it completes.
  const inputs = new InputStore(redis, queuePrefix(SERVICE), inputsKeepSeconds(jobsSettings));
  await registerJobs(app, {
    service: SERVICE,
    redis,
    timeoutMs: config.STATE_TIMEOUT_MS,
    work: config.JOBS_WORKER,
    // A job stops when the key that started it is revoked or its user removed.
    principalLive: (principal) => app.auth.store.principalLive(principal),
    settings: jobsSettings,
    kinds: [
      ingestJob({ retrieval, tokens, inputs, maxDocuments: config.JOBS_INGEST_MAX_DOCUMENTS, bodyLimit: config.JOBS_INGEST_BODY_LIMIT_BYTES }),
      reembedJob({ retrieval, tokens, isLive: (id) => jobLive(app, id), logger: app.log }),
    ],
    // Kinds at 0 stay listed so their scheduler, if an earlier boot made one, is removed.
    schedules: housekeepingKinds({
      history,
      cache: app.cache,
      index: retrieval.index,
      jobs: () => app.jobs,
      auth: app.auth.store,
      statsEveryMs,
      cleanupEveryMs,
    }),
  });
  await app.register(statsHistoryRoutes, { history, timeoutMs: config.STATE_TIMEOUT_MS, everyMs: statsEveryMs });

  // The queue dashboard at /admin/queues, for admins (CACHE_ADMIN_TOKEN or an admin key; a browser signs in once). Its
  // cookie is sealed with a secret every replica shares through the state Redis, so any replica behind the balancer
  // honours it; with that Redis away at boot, a per-process secret (the cookie then works on this replica only).
  const cookieSecret = await sharedDashboardSecret(app, config.STATE_TIMEOUT_MS);
  await mountQueueDashboard(app, { queues: [app.jobs.queue, ...(app.jobs.scheduled ? [app.jobs.scheduled] : [])], onRequest: app.auth.require('admin'), ...(cookieSecret ? { cookieSecret } : {}) });
}

/** Whether the job waits or runs (a retry waiting its backoff counts). */
async function jobLive(app: ServiceApp, id: string): Promise<boolean> {
  const job = await app.jobs.queue.getJob(id);
  if (!job) return false;
  return ['active', 'waiting', 'delayed', 'prioritized', 'waiting-children'].includes(await job.getState());
}

async function sharedDashboardSecret(app: ServiceApp, timeoutMs: number): Promise<string | undefined> {
  try {
    return await within(app.auth.store.sharedSecret('queue-dashboard'), timeoutMs);
  } catch (err) {
    app.log.warn({ err: { message: (err as Error).message } }, 'queue dashboard: shared cookie secret unavailable; sign-ins hold on this replica only');
    return undefined;
  }
}

/** The configured engine; pgvector gets its own readiness check and is closed with the app. */
function makeIndex(app: ServiceApp, config: Config, state: RedisClient | undefined): RetrievalIndex {
  if (config.RETRIEVAL_INDEX === 'redis') {
    return new RedisRetrievalIndex(
      new DocumentStore(
        state!,
        stateKeyPrefix(SERVICE, state!).slice(0, -1),
        config.STATE_TIMEOUT_MS,
        stateReplication(config, SERVICE, state!, app.log),
      ),
    );
  }
  const index = new PgVectorIndex({
    connectionString: config.DATABASE_URL!,
    schema: config.RETRIEVAL_PG_SCHEMA,
    efSearch: config.RETRIEVAL_PG_EF_SEARCH,
    timeoutMs: config.STATE_TIMEOUT_MS,
    poolSize: config.RETRIEVAL_PG_POOL_SIZE,
    hnsw: { m: config.RETRIEVAL_PG_HNSW_M, efConstruction: config.RETRIEVAL_PG_HNSW_EF_CONSTRUCTION },
    ...(config.RETRIEVAL_PG_BUILD_MEMORY ? { buildMemory: config.RETRIEVAL_PG_BUILD_MEMORY } : {}),
    warn: (message) => app.log.warn(message),
  });
  app.addHook('onClose', () => index.close());
  app.addReadinessCheck('index', async () => ((await index.ready()) ? { ok: true } : { ok: false, detail: 'PostgreSQL (document index) does not answer or its migrations did not run' }));
  return index;
}
