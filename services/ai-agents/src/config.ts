import { BaseConfig } from '@aicache/service-kit';
import { Type, type Static } from 'typebox';

/** The one settings schema of ai-agents (env-schema: `.env` gives defaults, real env wins). */
export const ConfigSchema = Type.Object({
  ...BaseConfig.properties,
  PORT: Type.Integer({ default: 8003, minimum: 0, maximum: 65535 }),
  REDIS_DB_AI_AGENTS: Type.Integer({ default: 2, minimum: 0, maximum: 15 }),
  /** Agent memory is state, not a cache category; the name is kept from the original stack. Default in app.ts (30 days). */
  CACHE_TTL_AGENT_MEMORY: Type.Optional(Type.Integer({ minimum: 1, description: 'Sliding TTL of agent memory, seconds (default 2592000)' })),
  /** Bound of each state Redis call; a write that times out answers 503 with Retry-After and is never applied later. */
  STATE_TIMEOUT_MS: Type.Integer({ default: 5000, minimum: 1 }),
  RETRIEVAL_PROXY_URL: Type.String({ default: 'http://127.0.0.1:8002', pattern: '^https?://' }),
  /** Unset: the built-in extractive responder answers (no network, no model). */
  LLM_BASE_URL: Type.Optional(Type.String({ pattern: '^https?://' })),
  LLM_API_KEY: Type.Optional(Type.String({ minLength: 1 })),
  LLM_MODEL: Type.String({ default: 'gpt-4o-mini', minLength: 1 }),
  LLM_TIMEOUT_MS: Type.Integer({ default: 30000, minimum: 1 }),
});

export type Config = Static<typeof ConfigSchema>;
