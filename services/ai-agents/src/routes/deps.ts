import { DEFAULT_TENANT } from '@aicache/auth';
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
 * retrieval-proxy carry. No auth plugin is registered in this service yet, so every request acts for the
 * default tenant, the owner of every record stored so far.
 */
export function actingFor(_request: FastifyRequest): ActingFor {
  return { tenant: DEFAULT_TENANT };
}

/** The tenant a request acts for. */
export function tenant(request: FastifyRequest): string {
  return actingFor(request).tenant;
}
