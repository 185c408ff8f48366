import { Forbidden, tenantOf } from '@aicache/auth';
import type { FastifyRequest } from 'fastify';
import type { PeerCall } from '../domain/retrieval-service.js';

/**
 * The tenant a request acts for, handed to the domain. The bootstrap admin token belongs to no tenant: on a route of
 * documents or searches it is refused with 403, like any credential that may not do what it asks.
 */
export function requestTenant(request: FastifyRequest): string {
  if (request.principal?.kind === 'bootstrap') {
    throw new Forbidden('The admin token (CACHE_ADMIN_TOKEN) belongs to no tenant: documents and searches need a user\'s API key or session');
  }
  return tenantOf(request);
}

/** The request id and, for the worker calls a request may need, a service token for its principal. */
export function peerCall(request: FastifyRequest): PeerCall {
  return { requestId: request.id, credentials: () => request.server.auth.peerHeaders(request) };
}
