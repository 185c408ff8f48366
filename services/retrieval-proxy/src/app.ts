import { checkStateDurability, createService, createStateRedis, registerCache, StateDurabilityError, type ServiceApp } from '@aicache/service-kit';
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

  await registerCache(app, config, {
    service: SERVICE,
    categories: CATEGORIES,
    dbVariable: 'REDIS_DB_RETRIEVAL_PROXY',
    defaultDb: 1,
    ...(overrides.cacheClient ? { client: overrides.cacheClient } : {}),
    adminRoutes: cacheAdminRoutes,
    ...(overrides.adminRateLimit === false ? { rateLimit: false as const } : {}),
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
      model: config.RETRIEVAL_EMBEDDINGS_MODEL,
    });

  const retrieval = new Retrieval({
    store,
    embedder,
    searchCache: app.cache.category('search_results'),
    contextCache: app.cache.category('context_bundles'),
    model: config.RETRIEVAL_EMBEDDINGS_MODEL ?? '',
    maxChunksPerDocument: config.MAX_CHUNKS_PER_DOCUMENT,
    ingestTimeoutMs: config.INGEST_EMBED_TIMEOUT_MS,
    logger: app.log,
  });

  // The index and the worker are needed to serve; cache trouble only degrades (registerCache's check).
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
