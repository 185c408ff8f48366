import type { AgentService } from '../domain/agent-service.js';
import type { ConversationService } from '../domain/conversation-service.js';

/** What the route plugins are given by buildApp: the domain services they call. */
export interface RouteDeps {
  agents: AgentService;
  conversations: ConversationService;
}
