import { redisOptionsFromEnv } from '@aicache/cache';
import { cachePlugin } from '@aicache/cache/fastify';
import { checkStateDurability, createService, createStateRedis, StateDurabilityError, type ServiceApp } from '@aicache/service-kit';
import type { Redis } from 'ioredis';
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from './config.js';
import { DocumentStore } from './domain/document-store.js';
import { WorkerEmbedder, WORKER_PEER, type Embedder } from './lib/embedder.js';
import { Retrieval } from './lib/retrieval.js';
import { cacheAdminRoutes } from './routes/cache-admin.js';
import { contextRoutes } from './routes/context.js';
import { documentRoutes } from './routes/documents.js';
import { searchRoutes } from './routes/search.js';

export const SERVICE = 'retrieval-proxy';
export const VERSION = '0.1.0';
export const STATE_PREFIX = `state:${SERVICE}`;

export const CATEGORIES = {
  search_results: { ttl: 3600 },
  context_bundles: { ttl: 1800 },
} as const;

export interface BuildOverrides {
  /** Cache Redis client (left open on close). */
  cacheClient?: Redis;
  /** State Redis client for the document index (left open on close). */
  stateRedis?: Redis;
  /** Instead of the multimodal-worker over HTTP. */
  embedder?: Embedder;
  logger?: false | FastifyBaseLogger;
  /** false leaves out the kit's under-pressure 503s (tests on a loaded machine). */
  underPressure?: false;
  /** Admin rate limit; false turns it off (tests). */
  adminRateLimit?: false | { max?: number; timeWindow?: number | string };
}

/** The env the cache library reads (connection and CACHE_TTL_*), taken from the validated config. */
function cacheEnv(config: Config): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {
    REDIS_URL: config.REDIS_URL,
    REDIS_HOST: config.REDIS_HOST,
    REDIS_PORT: String(config.REDIS_PORT),
    REDIS_USERNAME: config.REDIS_USERNAME,
    REDIS_PASSWORD: config.REDIS_PASSWORD,
    REDIS_TLS_CA_FILE: config.REDIS_TLS_CA_FILE,
    REDIS_DB_RETRIEVAL_PROXY: String(config.REDIS_DB_RETRIEVAL_PROXY),
  };
  if (config.CACHE_TTL_SEARCH_RESULTS !== undefined) env.CACHE_TTL_SEARCH_RESULTS = String(config.CACHE_TTL_SEARCH_RESULTS);
  if (config.CACHE_TTL_CONTEXT_BUNDLES !== undefined) env.CACHE_TTL_CONTEXT_BUNDLES = String(config.CACHE_TTL_CONTEXT_BUNDLES);
  return env;
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

  const env = cacheEnv(config);
  await app.register(cachePlugin, {
    service: SERVICE,
    categories: CATEGORIES,
    env,
    ...(overrides.cacheClient ? { client: overrides.cacheClient } : { connection: redisOptionsFromEnv(env, 'REDIS_DB_RETRIEVAL_PROXY', 1) }),
    logger: app.log,
    jitter: Math.min(config.CACHE_TTL_JITTER, 0.5),
    commandTimeoutMs: config.CACHE_COMMAND_TIMEOUT_MS,
    adminToken: config.CACHE_ADMIN_TOKEN,
    production: config.NODE_ENV === 'production',
    adminRoutes: cacheAdminRoutes,
    ...(overrides.adminRateLimit !== undefined ? { rateLimit: overrides.adminRateLimit } : {}),
  });

  const ownState = !overrides.stateRedis;
  const stateRedis =
    overrides.stateRedis ?? createStateRedis(config, { db: config.REDIS_DB_RETRIEVAL_PROXY, logger: app.log });
  const store = new DocumentStore(stateRedis, STATE_PREFIX, config.STATE_TIMEOUT_MS);

  const ownEmbedder = !overrides.embedder;
  const embedder =
    overrides.embedder ??
    new WorkerEmbedder({
      baseUrl: config.MULTIMODAL_WORKER_URL,
      timeoutMs: config.PEER_TIMEOUT_MS,
      retries: config.PEER_RETRIES,
      model: config.EMBEDDING_MODEL,
    });

  const retrieval = new Retrieval({
    store,
    embedder,
    searchCache: app.cache.category('search_results'),
    contextCache: app.cache.category('context_bundles'),
    model: config.EMBEDDING_MODEL ?? '',
    maxChunksPerDocument: config.MAX_CHUNKS_PER_DOCUMENT,
    ingestTimeoutMs: config.INGEST_EMBED_TIMEOUT_MS,
    logger: app.log,
  });

  // Cache trouble only degrades (answers come from origin); the index and the worker are needed to serve.
  app.addReadinessCheck(
    'redis',
    async () => {
      const h = await app.cache.health();
      return h.status === 'up'
        ? { ok: true }
        : { ok: false, degraded: true, detail: `cache ${h.status}${h.error ? `: ${h.error}` : ''} (answering without cache)` };
    },
    { required: false },
  );
  app.addReadinessCheck('state', async () => ((await store.ping()) ? { ok: true } : { ok: false, detail: 'document index Redis does not answer' }));
  app.addReadinessCheck(WORKER_PEER, async () =>
    (await embedder.ready()) ? { ok: true } : { ok: false, detail: `${config.MULTIMODAL_WORKER_URL}/health does not answer 200` },
  );

  app.addHook('onReady', async () => {
    const durability = checkStateDurability(stateRedis, { requireDurable: config.STATE_REQUIRE_DURABLE, logger: app.log });
    if (config.STATE_REQUIRE_DURABLE) {
      // Refuse to start on a state Redis that may lose the index (or cannot be checked).
      await durability;
    } else {
      // Boot does not wait for an unreachable state Redis: /health answers, /ready says not_ready.
      durability.catch((err: unknown) => {
        if (!(err instanceof StateDurabilityError)) {
          app.log.warn({ err: { message: (err as Error).message } }, 'state Redis durability could not be checked');
        }
      });
    }
    // Loaded in the background; a request arriving first waits for the same load (single flight).
    void retrieval.warmUp();
  });

  app.addHook('onClose', async () => {
    if (ownEmbedder) await embedder.close().catch(() => undefined);
    if (ownState) {
      // QUIT would wait in the offline queue while Redis is away; only a connected client says goodbye.
      if (stateRedis.status === 'ready') await stateRedis.quit().catch(() => stateRedis.disconnect());
      else stateRedis.disconnect();
    }
  });

  await app.register(documentRoutes, { retrieval, bodyLimit: config.DOCUMENT_BODY_LIMIT_BYTES });
  await app.register(searchRoutes, { retrieval });
  await app.register(contextRoutes, { retrieval });

  return app;
}
