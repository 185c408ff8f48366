import type { AgentService } from '../domain/agent-service.js';
import type { ConversationService } from '../domain/conversation-service.js';
import type { AgentStore } from '../domain/store.js';
import type { ContextPeer } from '../domain/retrieval.js';
import type { ChatProvider } from '../providers/types.js';

/** What the route plugins are given by buildApp. */
export interface RouteDeps {
  store: AgentStore;
  proxy: ContextPeer;
  provider: ChatProvider;
  agents: AgentService;
  conversations: ConversationService;
}
