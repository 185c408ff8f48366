import type { RedisClient } from '@aicache/cache';
import { AuditLog } from './audit.js';
import { Authenticator } from './authenticator.js';
import { ServiceTokens } from './service-token.js';
import { AuthStore } from './store.js';

export interface AuthSettings {
  /** The state Redis the auth records live on (shared by every service). */
  redis: RedisClient;
  service: string;
  sessionTtlSeconds: number;
  cacheTtlMs: number;
  sessionTouchMs: number;
  adminToken?: string | undefined;
  serviceTokenSecret?: string | undefined;
  auditMaxEntries: number;
  timeoutMs: number;
  logger?: { warn(obj: object, msg?: string): void };
}

export interface AuthParts {
  store: AuthStore;
  authenticator: Authenticator;
  tokens: ServiceTokens;
  audit: AuditLog;
}

/** The store, the authenticator (subscribed to revocations), service tokens and the audit stream, on one Redis. */
export async function createAuth(s: AuthSettings): Promise<AuthParts> {
  const store = new AuthStore(s.redis, { sessionTtlSeconds: s.sessionTtlSeconds });
  const tokens = new ServiceTokens({ service: s.service, sharedSecret: () => store.sharedSecret('service-token'), secret: s.serviceTokenSecret });
  const authenticator = new Authenticator({
    store,
    tokens,
    adminToken: s.adminToken,
    cacheTtlMs: s.cacheTtlMs,
    sessionTouchMs: s.sessionTouchMs,
    ...(s.logger ? { logger: s.logger } : {}),
  });
  authenticator.start();
  const audit = new AuditLog(s.redis, `${store.prefix}audit`, s.auditMaxEntries, s.service, s.timeoutMs);
  return { store, authenticator, tokens, audit };
}
