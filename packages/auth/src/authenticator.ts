import { LRUCache } from 'lru-cache';
import { isCluster, type RedisClient } from '@aicache/cache';
import type { Principal } from './principal.js';
import { digestOf, KEY_PREFIX, sameSecret, SESSION_PREFIX } from './secrets.js';
import type { ServiceTokens } from './service-token.js';
import type { AuthStore, Revocation } from './store.js';

export interface AuthenticatorOptions {
  store: AuthStore;
  tokens: ServiceTokens;
  /** CACHE_ADMIN_TOKEN: the bootstrap admin credential. */
  adminToken?: string | undefined;
  /**
   * How long a verified credential is trusted without asking Redis again (AUTH_CACHE_TTL_MS). Revocations are
   * announced on pub/sub and drop it at once on every replica; this is the bound when an announcement is lost.
   */
  cacheTtlMs: number;
  /** A session's expiry is pushed out at most this often per process (its TTL is checked on every cache miss). */
  sessionTouchMs: number;
  logger?: { warn(obj: object, msg?: string): void };
}

interface Entry {
  principal: Principal;
  /** The credential's own end (key expiry, session TTL, token exp): the entry never outlives it. */
  endsAt: number;
  session?: { digest: string; touchedAt: number };
}

const BOOTSTRAP: Principal = { kind: 'bootstrap', tenant: '', scopes: ['admin'], username: 'bootstrap-admin' };

/**
 * Turns a bearer secret into a principal. Verified credentials are kept in process for AUTH_CACHE_TTL_MS so a request
 * costs no Redis round trip for them; every revocation (key revoked, logout, logout-all, user deleted) is published on
 * the state Redis and every replica of every service drops the matching entries when it hears it. While the
 * subscription is down the cache is not used at all, so a revocation missed then cannot linger.
 */
export class Authenticator {
  private readonly cache: LRUCache<string, Entry>;
  private subscriber: RedisClient | undefined;
  private listening = false;

  constructor(private readonly opts: AuthenticatorOptions) {
    this.cache = new LRUCache({ max: 50_000, ttl: Math.max(1, opts.cacheTtlMs) });
  }

  /** Subscribes to revocations (a dedicated connection, as pub/sub requires). */
  start(): void {
    const redis = this.opts.store.redis;
    const sub: RedisClient = isCluster(redis) ? redis.duplicate() : redis.duplicate();
    this.subscriber = sub;
    sub.on('error', () => undefined);
    sub.on('ready', () => {
      // Whatever was announced while the subscription was down is unknown: start from an empty cache.
      this.cache.clear();
      this.listening = true;
    });
    sub.on('close', () => {
      this.listening = false;
    });
    sub.on('message', (_channel: string, message: string) => this.revoke(message));
    // Not awaited: with the state Redis away at boot the service still starts (credentials are then checked in Redis).
    void sub.subscribe(this.opts.store.channel).catch((err: unknown) => {
      this.opts.logger?.warn({ err: { message: (err as Error).message } }, 'auth: revocation channel not subscribed yet; credentials are checked in Redis on every request until it is');
    });
  }

  async close(): Promise<void> {
    this.listening = false;
    const sub = this.subscriber;
    this.subscriber = undefined;
    if (sub) await sub.quit().catch(() => sub.disconnect());
  }

  /** Drops what a revocation names (also called for revocations made in this process, before they are published). */
  revoke(message: string | Revocation): void {
    let r: Revocation;
    try {
      r = typeof message === 'string' ? (JSON.parse(message) as Revocation) : message;
    } catch {
      return;
    }
    if ('digest' in r) {
      this.cache.delete(r.digest);
      return;
    }
    for (const [digest, entry] of this.cache.entries()) {
      if (entry.principal.userId === r.userId) this.cache.delete(digest);
    }
  }

  /**
   * The principal of a credential verified in this process lately, without any I/O (the hot path of every request),
   * or undefined when it must be looked up (`authenticate`).
   */
  cached(secret: string): Principal | undefined {
    return this.fromCache(digestOf(secret), Date.now());
  }

  private fromCache(digest: string, now: number): Principal | undefined {
    if (!this.listening) return undefined;
    const entry = this.cache.get(digest);
    if (!entry || entry.endsAt <= now) return undefined;
    if (entry.session && now - entry.session.touchedAt >= this.opts.sessionTouchMs) {
      entry.session.touchedAt = now;
      this.opts.store.touchSession(entry.session.digest).catch(() => undefined);
    }
    return entry.principal;
  }

  /** The principal for a bearer secret, or null. Throws only when the state Redis cannot answer. */
  async authenticate(secret: string): Promise<Principal | null> {
    const now = Date.now();
    const digest = digestOf(secret);
    const hit = this.fromCache(digest, now);
    if (hit) return hit;
    const entry = await this.lookup(secret, digest, now);
    if (!entry) return null;
    if (this.listening) this.cache.set(digest, entry);
    return entry.principal;
  }

  private async lookup(secret: string, digest: string, now: number): Promise<Entry | null> {
    if (secret.startsWith(KEY_PREFIX)) {
      const found = await this.opts.store.resolve(digest, 'key');
      if (found?.kind !== 'key') return null;
      const { key, username } = found;
      return {
        principal: { kind: 'key', tenant: key.tenant, userId: key.userId, username, scopes: key.scopes, credentialId: key.id },
        endsAt: key.expiresAt ? Date.parse(key.expiresAt) : Number.POSITIVE_INFINITY,
      };
    }
    if (secret.startsWith(SESSION_PREFIX)) {
      const found = await this.opts.store.resolve(digest, 'session');
      if (found?.kind !== 'session') return null;
      const { session } = found;
      // This use pushes the expiry out; the next pushes come at most every sessionTouchMs.
      await this.opts.store.touchSession(digest);
      return {
        principal: { kind: 'session', tenant: session.tenant, userId: session.userId, username: session.username, scopes: session.scopes, credentialId: session.id },
        endsAt: now + this.opts.store.sessionTtlSeconds * 1000,
        session: { digest, touchedAt: now },
      };
    }
    if (secret.startsWith('eyJ')) {
      const verified = await this.opts.tokens.verify(secret);
      return verified ? { principal: verified.principal, endsAt: verified.expiresAtMs } : null;
    }
    if (this.opts.adminToken && sameSecret(secret, this.opts.adminToken)) return { principal: BOOTSTRAP, endsAt: Number.POSITIVE_INFINITY };
    return null;
  }

  /** The digest the cache and the store know a secret by (for logout). */
  digestOf(secret: string): string {
    return digestOf(secret);
  }

  /** For tests and figures: whether a digest is cached. */
  has(digest: string): boolean {
    return this.cache.has(digest);
  }

  get subscribed(): boolean {
    return this.listening;
  }
}
