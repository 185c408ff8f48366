import type { FastifyPluginAsync, FastifyPluginOptions } from 'fastify';
import fp from 'fastify-plugin';
import type { RedisClient } from '../connection.js';
import { Cache } from '../index.js';
import type { CacheOptions } from '../types.js';
import { CacheAdminTokenRequiredError } from './errors.js';
import type { AdminHook } from './auth.js';
import { adminRoutesPlugin, type AdminRateLimit, type StateFigures } from './routes.js';

declare module 'fastify' {
  interface FastifyInstance {
    cache: Cache;
  }
}

export interface CachePluginOptions<C extends string = string> extends CacheOptions<C> {
  /** Bearer token for the mutating admin routes. Unset: they answer 401 (never open). */
  adminToken?: string;
  /**
   * The host's own check for the admin routes (GET /stats included), used instead of the adminToken comparison:
   * e.g. a principal with the admin scope, or the bootstrap token.
   */
  adminHook?: AdminHook;
  /** In production a missing adminToken stops registration (unless adminHook is given). */
  production?: boolean;
  /** Where the admin routes live. Default '/api/v1/cache'. */
  prefix?: string;
  /** Service-specific admin routes, registered under the prefix behind the bearer check and rate limit. */
  adminRoutes?: FastifyPluginAsync;
  /** Per-IP rate limit of the admin routes (default 60 per minute); false leaves limiting to the host. */
  rateLimit?: AdminRateLimit | false;
  /**
   * Name of the bearer security scheme in the host's OpenAPI document (`components.securitySchemes`):
   * every route behind the admin token declares it. Unset: the routes declare no security.
   */
  adminSecurityScheme?: string;
  /**
   * Figures of data the service keeps as state, not cache (e.g. agent memory), shown under `state` in GET /stats
   * so they are not mistaken for a cache category. A failure shows as `state: null`.
   */
  state?: StateFigures;
}

export const DEFAULT_PREFIX = '/api/v1/cache';
const CONNECT_WAIT_MS = 2000;

/**
 * Resolves once a connection being made is ready, or after `ms`; never rejects. Without this the first requests
 * after boot are misses (the created client has no offline queue), and /test fails right after a deploy.
 */
function settleConnection(client: RedisClient, ms: number): Promise<boolean> {
  if (client.status === 'ready') return Promise.resolve(true);
  if (client.status !== 'connecting' && client.status !== 'connect' && client.status !== 'reconnecting') {
    return Promise.resolve(false);
  }
  return new Promise((resolve) => {
    const done = (ready: boolean) => {
      clearTimeout(timer);
      client.off('ready', onReady);
      resolve(ready);
    };
    const onReady = () => done(true);
    const timer = setTimeout(() => done(false), ms);
    client.once('ready', onReady);
  });
}

const plugin: FastifyPluginAsync<CachePluginOptions & FastifyPluginOptions> = async (fastify, options) => {
  const { adminToken, adminHook, production, prefix, adminRoutes, rateLimit, adminSecurityScheme, state, ...cacheOptions } = options;
  if (production && !adminToken && !adminHook) throw new CacheAdminTokenRequiredError();

  // A client passed in cacheOptions.client stays the caller's: Cache.close() leaves it open.
  const cache = new Cache({ ...cacheOptions, logger: cacheOptions.logger ?? fastify.log });
  fastify.decorate('cache', cache);
  fastify.addHook('onClose', async () => {
    await cache.close();
  });
  if (!(await settleConnection(cache.client, CONNECT_WAIT_MS)) && cache.client.status !== 'wait') {
    fastify.log.warn({ service: cache.service, db: cache.db }, 'cache: Redis not ready at boot; cache calls are misses until it is');
  }

  await fastify.register(adminRoutesPlugin, {
    prefix: prefix ?? DEFAULT_PREFIX,
    adminToken: adminToken || undefined,
    adminHook,
    adminRoutes,
    rateLimit: rateLimit ?? {},
    state,
    probeTimeoutMs: Math.max(1000, (cacheOptions.commandTimeoutMs ?? 250) * 4),
    securityScheme: adminSecurityScheme,
  });
};

/** Decorates `fastify.cache` and serves the admin routes under `prefix`. */
export const cachePlugin = fp(plugin, {
  fastify: '5.x',
  name: '@aicache/cache',
});
