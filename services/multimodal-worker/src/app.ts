import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { createService, registerRedis } from '@aicache/service-kit';
import { usesOpenAI, type Config } from './config.js';
import { EmbeddingService } from './domain/embedding-service.js';
import { FileProcessor } from './domain/file-processor.js';
import { LocalHashProvider } from './providers/local-hash.js';
import { OpenAIEmbeddingProvider } from './providers/openai.js';
import { ModelRegistry } from './providers/registry.js';
import type { EmbeddingProvider } from './providers/types.js';
import { cacheFileRoutes } from './routes/cache-files.js';
import { embeddingsRoutes } from './routes/embeddings.js';
import { frameworkErrors } from './routes/openai-errors.js';
import { modelsRoutes } from './routes/models.js';
import { processRoutes } from './routes/process.js';

export const VERSION = '0.1.0';

export const CATEGORIES = {
  embeddings: { ttl: 86_400 },
  model_metadata: { ttl: 86_400 },
  files: { ttl: 86_400 },
} as const;

export interface BuildOverrides {
  /** Cache Redis client (left open on close) instead of connecting from config. */
  cacheClient?: Redis;
  /** Replace the configured providers (tests wrap or fake them). The first is the default unless defaultModel says otherwise. */
  providers?: EmbeddingProvider[];
  defaultModel?: string;
  /** false silences logs (tests). */
  logger?: false;
  /** false drops load shedding (tests on a busy machine would get 503s from it). */
  underPressure?: false;
  /** false drops the per-IP rate limit of the admin routes (tests). */
  adminRateLimit?: false;
}

/** The configured providers: local-hash-384 always; the OpenAI-compatible model too (and as default) when configured. */
export function providersFromConfig(config: Config): { providers: EmbeddingProvider[]; defaultModel: string } {
  const local = new LocalHashProvider();
  if (!usesOpenAI(config)) return { providers: [local], defaultModel: local.id };
  const remote = new OpenAIEmbeddingProvider({
    baseUrl: config.EMBEDDINGS_BASE_URL ?? 'https://api.openai.com/v1',
    model: config.EMBEDDINGS_MODEL,
    ...(config.EMBEDDINGS_API_KEY ? { apiKey: config.EMBEDDINGS_API_KEY } : {}),
    ...(config.EMBEDDINGS_DIMENSIONS ? { dimensions: config.EMBEDDINGS_DIMENSIONS } : {}),
    batchSize: config.EMBEDDINGS_BATCH_SIZE,
    timeoutMs: config.EMBEDDINGS_TIMEOUT_MS,
    maxInputChars: config.EMBEDDINGS_MAX_INPUT_CHARS,
  });
  // The local model stays available by name unless the remote one claims the same id.
  const providers = remote.id === local.id ? [remote] : [remote, local];
  return { providers, defaultModel: remote.id };
}

export async function buildApp(config: Config, overrides: BuildOverrides = {}): Promise<FastifyInstance> {
  const app = await createService({
    name: config.SERVICE_NAME,
    version: VERSION,
    config,
    ...(overrides.logger === false ? { logger: false as const } : {}),
    ...(overrides.underPressure === false ? { underPressure: false as const } : {}),
    fastify: { frameworkErrors },
  });

  // The worker keeps no state: a cache connection only.
  await registerRedis(app, config, {
    cache: {
      service: config.SERVICE_NAME,
      categories: CATEGORIES,
      dbVariable: 'REDIS_DB_MULTIMODAL_WORKER',
      defaultDb: 0,
      ...(overrides.cacheClient ? { client: overrides.cacheClient } : {}),
      adminRoutes: cacheFileRoutes,
      ...(overrides.adminRateLimit === false ? { rateLimit: false as const } : {}),
    },
  });

  const configured = overrides.providers
    ? { providers: overrides.providers, defaultModel: overrides.defaultModel }
    : providersFromConfig(config);
  const registry = new ModelRegistry(configured.providers, configured.defaultModel);
  app.addHook('onClose', async () => registry.close());

  const embeddings = new EmbeddingService(registry, app.cache.category('embeddings'));
  const processor = new FileProcessor(registry, embeddings, app.cache.category('files'));

  await app.register(embeddingsRoutes, { embeddings, bodyLimit: config.EMBEDDINGS_BODY_LIMIT_BYTES });
  await app.register(modelsRoutes, { registry });
  await app.register(processRoutes, { processor });
  return app;
}
