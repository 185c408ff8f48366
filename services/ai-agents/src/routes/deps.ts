import { tenantOf } from '@aicache/auth';
import type { FastifyRequest } from 'fastify';
import type { AgentService } from '../domain/agent-service.js';
import type { ConversationService } from '../domain/conversation-service.js';
import type { ActingFor } from '../domain/retrieval.js';

/** What the route plugins are given by buildApp: the domain services they call. */
export interface RouteDeps {
  agents: AgentService;
  conversations: ConversationService;
}

/**
 * Whom a request acts for: its tenant, which scopes every read and write, and its principal, which calls to
 * retrieval-proxy carry. Set by the auth plugin on every route of this service.
 */
export function actingFor(request: FastifyRequest): ActingFor {
  const tenant = tenantOf(request);
  return { tenant, ...(request.principal ? { principal: request.principal } : {}) };
}

/** The tenant a request acts for. */
export function tenant(request: FastifyRequest): string {
  return tenantOf(request);
}
