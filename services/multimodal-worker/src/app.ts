import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { ConfigError, createService, registerAuth, registerRedis } from '@aicache/service-kit';
import { inputsKeepSeconds, jobsSettingsOf, queuePrefix, registerJobs } from '@aicache/jobs';
import type { RedisClient } from '@aicache/cache';
import { usesOpenAI, type Config } from './config.js';
import { EmbeddingService } from './domain/embedding-service.js';
import { FileProcessor } from './domain/file-processor.js';
import { LOCAL_HASH_MODEL_ID, LocalHashProvider } from './providers/local-hash.js';
import { LOCAL_SEMANTIC_MODEL_ID, LocalSemanticProvider } from './providers/local-semantic.js';
import { OpenAIEmbeddingProvider } from './providers/openai.js';
import { ModelRegistry } from './providers/registry.js';
import type { EmbeddingProvider } from './providers/types.js';
import { cacheFileRoutes } from './routes/cache-files.js';
import { embeddingsRoutes } from './routes/embeddings.js';
import { frameworkErrors } from './routes/openai-errors.js';
import { modelsRoutes } from './routes/models.js';
import { processRoutes } from './routes/process.js';
import { embeddingsJob, embeddingsJobRoutes } from './jobs/embeddings-job.js';
import { processJob, processJobRoutes } from './jobs/process-job.js';
import { JobStore } from './jobs/job-store.js';
import type { SpendInputs } from './jobs/input-budget.js';

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

const LOCAL_MODELS: Record<string, (config: Config) => EmbeddingProvider> = {
  [LOCAL_SEMANTIC_MODEL_ID]: (config) => new LocalSemanticProvider({ threads: config.EMBEDDINGS_LOCAL_THREADS }),
  [LOCAL_HASH_MODEL_ID]: () => new LocalHashProvider(),
};

/** The built-in models EMBEDDINGS_LOCAL_MODELS names, in its order; ConfigError for a name it does not know. */
export function localModelIds(config: Config): string[] {
  const ids = [...new Set(config.EMBEDDINGS_LOCAL_MODELS.split(',').map((s) => s.trim()).filter(Boolean))];
  const unknown = ids.filter((id) => !(id in LOCAL_MODELS));
  if (ids.length === 0 || unknown.length > 0) {
    const shown = unknown.length > 0 ? ` (unknown: ${unknown.map((u) => JSON.stringify(u.slice(0, 60))).join(', ')})` : '';
    throw new ConfigError([{ variable: 'EMBEDDINGS_LOCAL_MODELS', message: `must list one or more of ${Object.keys(LOCAL_MODELS).join(', ')}, comma-separated${shown}` }]);
  }
  return ids;
}

/**
 * The configured providers: the built-in models of EMBEDDINGS_LOCAL_MODELS (the first is the default), and the
 * OpenAI-compatible model too (and as default) when configured.
 */
export function providersFromConfig(config: Config): { providers: EmbeddingProvider[]; defaultModel: string } {
  const locals = localModelIds(config).map((id) => LOCAL_MODELS[id]!(config));
  if (!usesOpenAI(config)) return { providers: locals, defaultModel: locals[0]!.id };
  const remote = new OpenAIEmbeddingProvider({
    baseUrl: config.EMBEDDINGS_BASE_URL ?? 'https://api.openai.com/v1',
    model: config.EMBEDDINGS_MODEL,
    ...(config.EMBEDDINGS_API_KEY ? { apiKey: config.EMBEDDINGS_API_KEY } : {}),
    ...(config.EMBEDDINGS_DIMENSIONS ? { dimensions: config.EMBEDDINGS_DIMENSIONS } : {}),
    batchSize: config.EMBEDDINGS_BATCH_SIZE,
    timeoutMs: config.EMBEDDINGS_TIMEOUT_MS,
    maxInputChars: config.EMBEDDINGS_MAX_INPUT_CHARS,
  });
  // The local models stay available by name unless the remote one claims the same id.
  return { providers: [remote, ...locals.filter((l) => l.id !== remote.id)], defaultModel: remote.id };
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

  // Before any route: every route but /health, /ready, /metrics and /docs needs a principal (OpenAI clients send
  // their API key as a bearer token, which is what this takes).
  const auth = await registerAuth(app, config, { service: config.SERVICE_NAME });

  // The worker keeps no state of its own: a cache connection only (and the shared auth records above, whose
  // connection also carries the background jobs).
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
  for (const p of registry.all()) if (p instanceof LocalSemanticProvider) watchModelLoad(app, p);

  const embeddingsHint = config.JOBS_ENABLED
    ? `; more goes to a background job: POST /api/v1/jobs/embeddings (up to ${config.EMBEDDINGS_JOB_MAX_INPUTS} inputs in ${config.EMBEDDINGS_JOB_BODY_LIMIT_BYTES} bytes)`
    : '';
  const embeddings = new EmbeddingService(registry, app.cache.category('embeddings'), embeddingsHint);
  const processHint = config.JOBS_ENABLED
    ? `; larger texts go to a background job: POST /api/v1/jobs/process (up to ${config.PROCESS_JOB_MAX_TEXT_BYTES} bytes and ${config.PROCESS_JOB_MAX_CHUNKS} chunks)`
    : '';
  const processor = new FileProcessor(registry, embeddings, app.cache.category('files'), processHint);

  await app.register(embeddingsRoutes, { embeddings, bodyLimit: config.EMBEDDINGS_BODY_LIMIT_BYTES, ...(embeddingsHint ? { tooLargeHint: embeddingsHint } : {}) });
  await app.register(modelsRoutes, { registry });
  await app.register(processRoutes, { processor, ...(processHint ? { tooLargeHint: processHint } : {}) });
  if (config.JOBS_ENABLED) await registerJobRoutes(app, config, auth.store.redis, embeddings, registry);
  return app;
}

/**
 * Background jobs on the state connection of the auth records (REDIS_DB_AUTH, non-evicting where the stack is
 * deployed as documented), under the prefix jobs:{<SERVICE_NAME>} that keeps them apart from those records. An
 * evicting Redis refuses jobs: every other route is still served, and the job routes answer 503 with why.
 */
async function registerJobRoutes(app: FastifyInstance, config: Config, redis: RedisClient, embeddings: EmbeddingService, registry: ModelRegistry): Promise<void> {
  const settings = jobsSettingsOf(config);
  // Inputs and unfinished output live as long as the job can still be retried; a completed job's output as long as it.
  const store = new JobStore(redis, queuePrefix(config.SERVICE_NAME), inputsKeepSeconds(settings));
  // A job's batches spend the budget of the credential that started it, as the synchronous routes do.
  const spendInputs: SpendInputs = (principal, count) => app.auth.spendInputs(principal, count);
  const helpers = await registerJobs(app, {
    service: config.SERVICE_NAME,
    redis,
    timeoutMs: config.STATE_TIMEOUT_MS,
    work: config.JOBS_WORKER,
    // A job stops when the key that started it is revoked or its user removed.
    principalLive: (principal) => app.auth.store.principalLive(principal),
    // Embedding changes no one's data: the read key that may start a job may also cancel or retry it.
    manageScope: 'read',
    settings,
    kinds: [
      embeddingsJob({
        embeddings,
        registry,
        store,
        maxInputs: config.EMBEDDINGS_JOB_MAX_INPUTS,
        bodyLimit: config.EMBEDDINGS_JOB_BODY_LIMIT_BYTES,
        keepCompletedSeconds: settings.keepCompletedSeconds,
        spendInputs,
      }),
      processJob({
        embeddings,
        registry,
        store,
        maxBytes: config.PROCESS_JOB_MAX_TEXT_BYTES,
        maxChunks: config.PROCESS_JOB_MAX_CHUNKS,
        bodyLimit: config.PROCESS_JOB_BODY_LIMIT_BYTES,
        keepCompletedSeconds: settings.keepCompletedSeconds,
        spendInputs,
      }),
    ],
  });
  embeddingsJobRoutes(app, { helpers, store });
  processJobRoutes(app, { helpers, store });
}

/**
 * A semantic model loads in its thread while the service starts: /ready says 'not_ready' (check 'model') until it
 * has, and the log says what the load cost.
 */
function watchModelLoad(app: FastifyInstance, p: LocalSemanticProvider): void {
  p.loaded.then(
    ({ loadMs, loadRssBytes }) => app.log.info({ model: p.id, loadMs: Math.round(loadMs), loadRssMB: Math.round(loadRssBytes / 1e6) }, 'embedding model loaded'),
    (err: unknown) => app.log.error({ model: p.id, err: { message: (err as Error)?.message } }, 'embedding model failed to load'),
  );
  app.addReadinessCheck(`model`, () => {
    const s = p.status();
    if (s.status === 'ready') return { ok: true, detail: `${p.id} loaded in ${Math.round(s.load.loadMs)} ms (+${Math.round(s.load.loadRssBytes / 1e6)} MB)` };
    return { ok: false, detail: s.status === 'loading' ? `${p.id} is loading` : `${p.id} failed to load: ${s.error}` };
  });
}
