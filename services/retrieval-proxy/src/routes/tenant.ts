import { tenantOf } from '@aicache/auth';
import type { FastifyRequest } from 'fastify';
import type { PeerCall } from '../domain/retrieval-service.js';

/** The tenant a request acts for, handed to the domain (403 for the bootstrap admin token, which has none). */
export function requestTenant(request: FastifyRequest): string {
  return tenantOf(request);
}

/** The request id and, for the worker calls a request may need, a service token for its principal. */
export function peerCall(request: FastifyRequest): PeerCall {
  return { requestId: request.id, credentials: () => request.server.auth.peerHeaders(request) };
}
