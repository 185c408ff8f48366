import { randomUUID } from 'node:crypto';
import type { Citation } from '@aicache/contracts';
import { errors } from '@aicache/service-kit';
import type { ChatProvider } from '../providers/types.js';
import { fetchContext, filtersProblem, hybridRefused, type ActingFor, type ContextPeer } from './retrieval.js';
import type { AgentStore } from './store.js';
import type { Conversation, MemoryItem, Message } from './types.js';

/** How many recent memory items the chat provider sees. */
const PROMPT_MEMORY_ITEMS = 20;

export interface AssistantMessage {
  id: string;
  role: 'assistant';
  content: string;
  citations: Citation[];
  createdAt: string;
}

export interface Exchange {
  conversationId: string;
  userMessage: Message;
  reply: AssistantMessage;
  citations: Citation[];
  provider: string;
}

/**
 * A conversation turn: the user message is stored first (so nothing the user wrote is lost when the proxy or the
 * model fails), then context from retrieval-proxy, the agent's memory and the model's reply, stored with the
 * proxy's citations as sent. A conversation or agent deleted meanwhile refuses every later write (404).
 * Every call acts within one tenant: another tenant's conversation or agent is not found, exactly like an id never
 * used, and retrieval-proxy is asked on behalf of the same tenant.
 */
export class ConversationService {
  constructor(private readonly deps: { store: AgentStore; proxy: ContextPeer; provider: ChatProvider }) {}

  async send(actingFor: ActingFor, conversationId: string, content: string, requestId?: string): Promise<Exchange> {
    const { store, proxy, provider } = this.deps;
    const { tenant } = actingFor;
    const conversation = await store.getConversation(tenant, conversationId);
    if (!conversation) throw errors.NotFound('conversation', conversationId);
    const agent = await store.getAgent(tenant, conversation.agentId);
    if (!agent) throw errors.NotFound('agent', conversation.agentId);
    if (content.trim().length === 0) throw errors.BadRequest('content must not be blank');
    const refused = filtersProblem(agent.settings.filters);
    if (refused) {
      throw errors.Conflict(`agent '${agent.id}' has filters retrieval-proxy refuses (${refused}); change them with PATCH /api/v1/agents/${agent.id}`);
    }
    const gone = () => errors.NotFound('conversation', conversation.id);

    const userMessage: Message = { id: randomUUID(), role: 'user', content, createdAt: new Date().toISOString() };
    if (!(await store.appendMessage(tenant, conversation.id, userMessage))) throw gone();

    const context = await fetchContext(proxy, actingFor, agent, content, requestId).catch((err: unknown) => {
      throw hybridRefused(agent, err) ?? err;
    });
    const { items: memory } = await store.readMemory(tenant, agent.id, PROMPT_MEMORY_ITEMS);
    const answer = await provider.reply({ agent, memory, context, message: content, ...(requestId ? { requestId } : {}) });

    // The proxy's citations as it sent them: [n] in the reply is the section whose citation id is n.
    const byId = new Map(context.map((s) => [s.citation.id, s.citation]));
    const citations = answer.citationsUsed.map((n) => byId.get(n)).filter((c): c is Citation => c !== undefined);
    const reply: AssistantMessage = { id: randomUUID(), role: 'assistant', content: answer.content, citations, createdAt: new Date().toISOString() };
    // Deleted meanwhile (the conversation, or the agent with it): the write is refused, nothing is left behind.
    if (!(await store.appendMessage(tenant, conversation.id, reply))) throw gone();
    const remembered: MemoryItem[] = [
      { role: 'user', content, conversationId: conversation.id, at: userMessage.createdAt },
      { role: 'assistant', content: reply.content, conversationId: conversation.id, at: reply.createdAt },
    ];
    if (!(await store.appendMemory(tenant, agent.id, remembered, agent.settings.memoryMaxItems))) throw gone();

    return { conversationId: conversation.id, userMessage, reply, citations, provider: provider.id };
  }

  private async requireAgent(tenant: string, agentId: string): Promise<void> {
    if (!(await this.deps.store.getAgent(tenant, agentId))) throw errors.NotFound('agent', agentId);
  }

  private async require(tenant: string, id: string): Promise<Conversation> {
    const conversation = await this.deps.store.getConversation(tenant, id);
    if (!conversation) throw errors.NotFound('conversation', id);
    return conversation;
  }

  async create(tenant: string, agentId: string, title: string | undefined): Promise<Conversation> {
    await this.requireAgent(tenant, agentId);
    const conversation: Conversation = { id: randomUUID(), agentId, title: title ?? null, createdAt: new Date().toISOString() };
    // The agent may be deleted meanwhile: then nothing is written, and the answer is the same 404.
    if (!(await this.deps.store.createConversation(tenant, conversation))) throw errors.NotFound('agent', agentId);
    return conversation;
  }

  async list(tenant: string, agentId: string, limit: number, offset: number) {
    await this.requireAgent(tenant, agentId);
    return this.deps.store.listConversations(tenant, agentId, limit, offset);
  }

  /** Deletes every conversation of an agent; answers how many. */
  async deleteAll(tenant: string, agentId: string): Promise<number> {
    await this.requireAgent(tenant, agentId);
    return this.deps.store.deleteAgentConversations(tenant, agentId);
  }

  async get(tenant: string, id: string): Promise<Conversation & { messageCount: number }> {
    const conversation = await this.require(tenant, id);
    return { ...conversation, messageCount: await this.deps.store.countMessages(tenant, conversation.id) };
  }

  async delete(tenant: string, id: string): Promise<void> {
    await this.deps.store.deleteConversation(tenant, await this.require(tenant, id));
  }

  async history(tenant: string, conversationId: string, limit: number, before?: number) {
    const conversation = await this.require(tenant, conversationId);
    return this.deps.store.pageMessages(tenant, conversation.id, limit, before);
  }
}
