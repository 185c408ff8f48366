import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { CacheAdminUnauthorizedError } from './errors.js';

export type AdminHook = (request: FastifyRequest, reply: FastifyReply) => Promise<void>;

const BEARER = /^Bearer +(.+)$/i;

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/**
 * A hook (onRequest or preHandler) that lets a request through only with `Authorization: Bearer <token>`.
 * With no token configured every request is refused: admin routes are never open by accident.
 * Digests are compared so neither the content nor the length of the token leaks through timing.
 */
export function requireAdmin(token: string | undefined): AdminHook {
  const expected = token ? digest(token) : undefined;
  return async function requireCacheAdmin(request, reply) {
    if (!expected) {
      throw new CacheAdminUnauthorizedError('CACHE_ADMIN_TOKEN is not set, so the cache admin routes are disabled');
    }
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? BEARER.exec(header) : null;
    if (!match?.[1]) {
      reply.header('www-authenticate', 'Bearer realm="cache-admin"');
      throw new CacheAdminUnauthorizedError('Missing admin token: send Authorization: Bearer <CACHE_ADMIN_TOKEN>');
    }
    if (!timingSafeEqual(digest(match[1]), expected)) {
      reply.header('www-authenticate', 'Bearer realm="cache-admin", error="invalid_token"');
      throw new CacheAdminUnauthorizedError('Invalid admin token');
    }
  };
}
