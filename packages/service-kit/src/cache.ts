import { redisOptionsFromEnv, unmappedRedisSettings, type CategorySpec } from '@aicache/cache';
import { cachePlugin, type StateFigures } from '@aicache/cache/fastify';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Redis } from 'ioredis';
import type { BaseConfig } from './config.js';
import { ADMIN_SECURITY_SCHEME } from './docs.js';
import { redisTopologiesOfConfig } from './topology.js';

export interface ServiceCacheOptions<C extends string> {
  /** Key prefix and stats name. */
  service: string;
  categories: Record<C, CategorySpec>;
  /** The service's own DB variable, e.g. REDIS_DB_RETRIEVAL_PROXY, and its default. */
  dbVariable: string;
  defaultDb: number;
  /** An existing client (left open on close) instead of connecting from the config. */
  client?: Redis;
  /** Service-specific admin routes under /api/v1/cache, behind the admin token and rate limit. */
  adminRoutes?: FastifyPluginAsync;
  /** false: no admin rate limit (tests that send many admin calls). */
  rateLimit?: false;
  /** Figures of the service's state (not cache), shown under `state` in GET /api/v1/cache/stats. */
  state?: StateFigures;
}

export type ServiceCacheConfig = Pick<
  BaseConfig,
  | 'NODE_ENV'
  | 'CACHE_ADMIN_TOKEN'
  | 'CACHE_COMMAND_TIMEOUT_MS'
  | 'CACHE_TTL_JITTER'
  | 'CACHE_ADMIN_RATE_LIMIT_MAX'
  | 'CACHE_ADMIN_RATE_LIMIT_WINDOW_MS'
  | 'CACHE_STATS_RATE_LIMIT_MAX'
  | 'CACHE_STATS_RATE_LIMIT_WINDOW_MS'
>;

/** The validated config as the string env the cache library reads (REDIS_*, CACHE_TTL_*, CACHE_L1_MAX_BYTES_*). */
function envOf(config: object): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(config)) {
    if (v !== undefined && v !== null && (k.startsWith('REDIS_') || k.startsWith('CACHE_TTL_') || k.startsWith('CACHE_L1_MAX_BYTES_'))) env[k] = String(v);
  }
  return env;
}

/**
 * Registers the cache plugin the same way in every service: connection, TTL overrides, timeouts and
 * admin settings from the validated config, and a readiness check that reports a cache outage as
 * 'degraded' (the service still answers, from origin). Settings of the original stack that change nothing here
 * get one warning each.
 */
export async function registerCache<C extends string>(app: FastifyInstance, config: ServiceCacheConfig, opts: ServiceCacheOptions<C>): Promise<void> {
  const env = envOf(config);
  for (const { variable, message } of unmappedRedisSettings(env, opts.dbVariable)) app.log.warn({ variable }, message);
  await app.register(cachePlugin, {
    service: opts.service,
    categories: opts.categories,
    env,
    ...(opts.client
      ? { client: opts.client }
      : { connection: redisOptionsFromEnv(env, opts.dbVariable, opts.defaultDb), topology: redisTopologiesOfConfig(config).cache }),
    jitter: config.CACHE_TTL_JITTER,
    commandTimeoutMs: config.CACHE_COMMAND_TIMEOUT_MS,
    logger: app.log,
    adminToken: config.CACHE_ADMIN_TOKEN,
    // With authentication on, an admin API key or session opens the admin routes too (and GET /stats needs one).
    ...(app.hasDecorator('auth') && app.auth.mode === 'on' ? { adminHook: app.auth.require('admin') } : {}),
    production: config.NODE_ENV === 'production',
    rateLimit: opts.rateLimit ?? {
      max: config.CACHE_ADMIN_RATE_LIMIT_MAX,
      timeWindow: config.CACHE_ADMIN_RATE_LIMIT_WINDOW_MS,
      stats: { max: config.CACHE_STATS_RATE_LIMIT_MAX, timeWindow: config.CACHE_STATS_RATE_LIMIT_WINDOW_MS },
    },
    adminSecurityScheme: ADMIN_SECURITY_SCHEME,
    ...(opts.adminRoutes ? { adminRoutes: opts.adminRoutes } : {}),
    ...(opts.state ? { state: opts.state } : {}),
  });

  app.addReadinessCheck(
    'redis',
    async () => {
      const h = await app.cache.health();
      return h.status === 'up'
        ? { ok: true }
        : { ok: false, degraded: true, detail: `cache ${h.status}${h.error ? `: ${h.error}` : ''} (answering without the cache)` };
    },
    { required: false },
  );
}
