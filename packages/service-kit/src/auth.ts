import { quitOrDisconnect, type RedisClient } from '@aicache/cache';
import { authPlugin, createAuth, Limits, LoginLimiter, principalLimits, type AuthParts } from '@aicache/auth';
import type { FastifyInstance } from 'fastify';
import type { BaseConfig } from './config.js';
import { ADMIN_SECURITY_SCHEME } from './docs.js';
import { createStateRedis, type StateRedisConfig } from './state-redis.js';

export type AuthConfig = StateRedisConfig &
  Pick<
    BaseConfig,
    | 'NODE_ENV'
    | 'AUTH_MODE'
    | 'REDIS_DB_AUTH'
    | 'SESSION_TTL_SECONDS'
    | 'AUTH_CACHE_TTL_MS'
    | 'AUTH_TIMEOUT_MS'
    | 'SERVICE_TOKEN_SECRET'
    | 'AUDIT_MAX_ENTRIES'
    | 'CACHE_ADMIN_TOKEN'
    | 'AUTH_RATE_LIMIT_PER_MINUTE'
    | 'AUTH_LOGIN_MAX_FAILURES'
    | 'AUTH_LOGIN_LOCKOUT_SECONDS'
    | 'AUTH_LOGIN_MAX_FAILURES_PER_IP'
    | 'EMBEDDINGS_INPUTS_PER_MINUTE'
  >;

/** A session's expiry is pushed out at most this often per process (each push is one EXPIRE). */
export const SESSION_TOUCH_MS = 1000;

export class AuthModeRefusedError extends Error {
  readonly code = 'AUTH_MODE_REFUSED';
  constructor() {
    super('AUTH_MODE=off is for development: it is refused with NODE_ENV=production (every route would be open)');
  }
}

export interface AuthOptions {
  service: string;
  /** An existing client for the auth records (left open on close); default a state connection on REDIS_DB_AUTH. */
  client?: RedisClient;
  /** false: no limits (tests that are not about them). */
  limits?: false;
}

/**
 * Authentication the same way in every service, registered before any route: users, API keys, sessions and service
 * tokens on the state Redis (DB REDIS_DB_AUTH, shared by every service), the /api/v1/auth routes, the per-request
 * check, and an 'auth' readiness check (without its Redis no credential can be checked).
 */
export async function registerAuth(app: FastifyInstance, config: AuthConfig, opts: AuthOptions): Promise<AuthParts> {
  if (config.AUTH_MODE === 'off' && config.NODE_ENV === 'production') throw new AuthModeRefusedError();
  if (config.AUTH_MODE === 'off') app.log.warn('AUTH_MODE=off: requests without a credential act for tenant "default" (development only)');
  const own = !opts.client;
  const redis = opts.client ?? createStateRedis({ ...config, SERVICE_NAME: config.SERVICE_NAME ?? opts.service }, { db: config.REDIS_DB_AUTH, logger: app.log });
  const parts = await createAuth({
    redis,
    service: opts.service,
    sessionTtlSeconds: config.SESSION_TTL_SECONDS,
    cacheTtlMs: config.AUTH_CACHE_TTL_MS,
    sessionTouchMs: SESSION_TOUCH_MS,
    adminToken: config.CACHE_ADMIN_TOKEN,
    serviceTokenSecret: config.SERVICE_TOKEN_SECRET,
    auditMaxEntries: config.AUDIT_MAX_ENTRIES,
    timeoutMs: config.AUTH_TIMEOUT_MS,
    logger: app.log,
  });
  const limits =
    opts.limits === false
      ? undefined
      : principalLimits(
          new Limits({
            redis,
            keyPrefix: parts.store.prefix,
            timeoutMs: Math.min(250, config.AUTH_TIMEOUT_MS),
            onRedisError: ({ op, message }) => app.log.warn({ op, err: { message } }, 'auth limits: Redis trouble, allowing (degraded)'),
            requests: { limit: config.AUTH_RATE_LIMIT_PER_MINUTE, windowMs: 60_000 },
            logins: {
              maxFailuresPerUser: config.AUTH_LOGIN_MAX_FAILURES,
              userWindowMs: config.AUTH_LOGIN_LOCKOUT_SECONDS * 1000,
              userLockMs: config.AUTH_LOGIN_LOCKOUT_SECONDS * 1000,
              maxFailuresPerIp: config.AUTH_LOGIN_MAX_FAILURES_PER_IP,
            },
            inputs: { limit: config.EMBEDDINGS_INPUTS_PER_MINUTE, windowMs: 60_000 },
          }),
          // Invalid bearer credentials per address: the same budget as failed logins per address.
          new LoginLimiter({
            redis,
            keyPrefix: `${parts.store.prefix}bearer:`,
            timeoutMs: Math.min(250, config.AUTH_TIMEOUT_MS),
            maxFailuresPerUser: Number.MAX_SAFE_INTEGER,
            maxFailuresPerIp: config.AUTH_LOGIN_MAX_FAILURES_PER_IP,
          }),
        );
  app.addHook('onClose', async () => {
    await limits?.close();
    await parts.authenticator.close();
    if (own) await quitOrDisconnect(redis);
  });
  await app.register(authPlugin, {
    service: opts.service,
    mode: config.AUTH_MODE,
    ...parts,
    ...(limits ? { limits } : {}),
    timeoutMs: config.AUTH_TIMEOUT_MS,
    securityScheme: ADMIN_SECURITY_SCHEME,
  });
  // With AUTH_MODE=on no credential can be checked without this Redis: not ready. Off, it only degrades.
  const required = config.AUTH_MODE === 'on';
  app.addReadinessCheck(
    'auth',
    async () => {
      const ok = redis.status === 'ready' && (await redis.ping().then((r) => r === 'PONG').catch(() => false));
      return ok ? { ok } : { ok, degraded: !required, detail: 'the Redis holding users, keys and sessions does not answer' };
    },
    { required },
  );
  return parts;
}

