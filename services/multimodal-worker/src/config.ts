import { BaseConfig, loadConfig as kitLoadConfig } from '@aicache/service-kit';
import { Type, type Static } from 'typebox';
import { JobsConfig } from '@aicache/jobs';

export const ConfigSchema = Type.Object({
  ...BaseConfig.properties,
  PORT: Type.Integer({ default: 8001, minimum: 0, maximum: 65535 }),
  SERVICE_NAME: Type.String({ default: 'multimodal-worker', minLength: 1, pattern: '^[a-z0-9-]+$' }),
  REDIS_DB_MULTIMODAL_WORKER: Type.Integer({ default: 0, minimum: 0, maximum: 15 }),
  CACHE_TTL_EMBEDDINGS: Type.Optional(Type.Integer({ minimum: 1, description: 'seconds; default 86400' })),
  CACHE_TTL_MODEL_METADATA: Type.Optional(Type.Integer({ minimum: 1, description: 'seconds; default 86400' })),
  CACHE_TTL_FILES: Type.Optional(Type.Integer({ minimum: 1, description: 'seconds; default 86400' })),
  CACHE_L1_MAX_BYTES_EMBEDDINGS: Type.Optional(Type.Integer({ minimum: 0, description: 'bytes of an in-process L1 tier; unset or 0 = none' })),
  CACHE_L1_MAX_BYTES_MODEL_METADATA: Type.Optional(Type.Integer({ minimum: 0, description: 'bytes of an in-process L1 tier; unset or 0 = none' })),
  CACHE_L1_MAX_BYTES_FILES: Type.Optional(Type.Integer({ minimum: 0, description: 'bytes of an in-process L1 tier; unset or 0 = none' })),
  /**
   * The built-in models to serve, comma-separated: local-use-512 (Universal Sentence Encoder, semantic, in a worker
   * thread) and/or local-hash-384 (lexical feature hashing). Without an OpenAI-compatible endpoint the first is the
   * default model. `npm start` and compose set 'local-use-512,local-hash-384'.
   */
  EMBEDDINGS_LOCAL_MODELS: Type.String({ default: 'local-hash-384', minLength: 1, maxLength: 200 }),
  /** Worker threads that each hold a copy of the semantic model (~130 MB each). */
  EMBEDDINGS_LOCAL_THREADS: Type.Integer({ default: 1, minimum: 1, maximum: 16 }),
  /** 'local' = built-in models only (EMBEDDINGS_LOCAL_MODELS); 'openai' = an OpenAI-compatible endpoint (also chosen when EMBEDDINGS_BASE_URL is set). */
  EMBEDDINGS_PROVIDER: Type.Optional(Type.Union([Type.Literal('local'), Type.Literal('openai')])),
  /** e.g. https://api.openai.com/v1, http://ollama:11434/v1 (vLLM, TEI and LiteLLM work the same way). */
  EMBEDDINGS_BASE_URL: Type.Optional(Type.String({ pattern: '^https?://', maxLength: 2000 })),
  /** Sent as a bearer token; never logged. */
  EMBEDDINGS_API_KEY: Type.Optional(Type.String({ minLength: 1 })),
  EMBEDDINGS_MODEL: Type.String({ default: 'text-embedding-3-small', minLength: 1, maxLength: 200 }),
  /** Expected vector length of EMBEDDINGS_MODEL; unset = learned from the first answer. */
  EMBEDDINGS_DIMENSIONS: Type.Optional(Type.Integer({ minimum: 1, maximum: 65_536 })),
  EMBEDDINGS_BATCH_SIZE: Type.Integer({ default: 128, minimum: 1, maximum: 2048 }),
  EMBEDDINGS_TIMEOUT_MS: Type.Integer({ default: 30_000, minimum: 1 }),
  EMBEDDINGS_MAX_INPUT_CHARS: Type.Integer({ default: 32_768, minimum: 1, maximum: 32_768 }),
  /** Body limit of POST /api/v1/embeddings (2048 inputs of up to 32 KB). */
  EMBEDDINGS_BODY_LIMIT_BYTES: Type.Integer({ default: 16 * 1024 * 1024, minimum: 1024 }),
  /**
   * Background jobs (embeddings of more inputs than one request takes) on the state Redis the auth records use
   * (REDIS_DB_AUTH, under jobs:{<SERVICE_NAME>}); it must be maxmemory-policy noeviction, else the job routes answer 503.
   */
  ...JobsConfig.properties,
  /** Job routes refuse to wait longer than this for the state Redis (503). */
  STATE_TIMEOUT_MS: Type.Integer({ default: 5000, minimum: 1 }),
  /** Inputs one embeddings job may carry, and the body limit of its start route. */
  EMBEDDINGS_JOB_MAX_INPUTS: Type.Integer({ default: 100_000, minimum: 1, maximum: 1_000_000 }),
  EMBEDDINGS_JOB_BODY_LIMIT_BYTES: Type.Integer({ default: 64 * 1024 * 1024, minimum: 1024 }),
  /** UTF-8 bytes of the text of one process job, the chunks it may make, and the body limit of its start route. */
  PROCESS_JOB_MAX_TEXT_BYTES: Type.Integer({ default: 32 * 1024 * 1024, minimum: 1024, maximum: 256 * 1024 * 1024 }),
  PROCESS_JOB_MAX_CHUNKS: Type.Integer({ default: 200_000, minimum: 1, maximum: 2_000_000 }),
  PROCESS_JOB_BODY_LIMIT_BYTES: Type.Integer({ default: 64 * 1024 * 1024, minimum: 1024 }),
});
export type Config = Static<typeof ConfigSchema>;

export function loadConfig(env?: Record<string, string | undefined>): Config {
  return kitLoadConfig(ConfigSchema, env ? { env } : {});
}

/** Whether the OpenAI-compatible provider is configured (EMBEDDINGS_PROVIDER=openai, or a base URL without an explicit 'local'). */
export function usesOpenAI(config: Config): boolean {
  if (config.EMBEDDINGS_PROVIDER === 'openai') return true;
  if (config.EMBEDDINGS_PROVIDER === 'local') return false;
  return config.EMBEDDINGS_BASE_URL !== undefined;
}
