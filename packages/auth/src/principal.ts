import type { FastifyRequest } from 'fastify';
import { Forbidden } from './errors.js';

/** What a credential may do. `admin` implies `write`, which implies `read`, within the principal's own tenant. */
export type Scope = 'read' | 'write' | 'admin';
export const SCOPES: readonly Scope[] = ['read', 'write', 'admin'];

/** A tenant id: safe to put in a Redis key, a SQL value and a log line as it is. */
export const TENANT_PATTERN = '^[a-z0-9][a-z0-9_-]{0,62}$';
export const TENANT_RE = new RegExp(TENANT_PATTERN);

/** The tenant of the development mode (AUTH_MODE=off) and of users created without one. */
export const DEFAULT_TENANT = 'default';

/**
 * Who a request acts for, set on every request that reached a handler.
 * - `key`: an API key; `session`: a login session; `service`: a short-lived token minted by a peer service acting for
 *   a user (`via` names it); `bootstrap`: the static CACHE_ADMIN_TOKEN (admin routes only, no tenant data);
 *   `anonymous`: AUTH_MODE=off (development only).
 */
export interface Principal {
  kind: 'key' | 'session' | 'service' | 'bootstrap' | 'anonymous';
  /** Whose data the request may see. Every stored resource belongs to exactly one tenant. */
  tenant: string;
  userId?: string;
  username?: string;
  scopes: readonly Scope[];
  /** The key id or session id (never the secret). */
  credentialId?: string;
  /** The service that minted a service token. */
  via?: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | undefined;
  }
}

/** True when `scopes` allow `needed` (admin > write > read). */
export function allows(scopes: readonly Scope[], needed: Scope): boolean {
  const rank = (s: Scope) => SCOPES.indexOf(s);
  return scopes.some((s) => rank(s) >= rank(needed));
}

/**
 * The tenant a request acts for. Routes pass it to the domain, which keys and filters every read and write by it.
 * The bootstrap admin token belongs to no tenant: a 403. Throws a plain error on a route the auth plugin did not guard
 * (a programming error, not a user's).
 */
export function tenantOf(request: FastifyRequest): string {
  const principal = request.principal;
  if (!principal) throw new Error(`no principal on ${request.method} ${request.routeOptions.url}: is the auth plugin registered?`);
  if (principal.kind === 'bootstrap') {
    throw new Forbidden("The admin token (CACHE_ADMIN_TOKEN) belongs to no tenant: tenants' data needs a user's API key or session");
  }
  return principal.tenant;
}
