import type { Redis } from 'ioredis';
import type { Agent, Conversation, MemoryItem, Message } from './types.js';

/**
 * Agents, conversations, messages and agent memory, kept as state under `state:ai-agents:*` on the
 * state Redis client. Nothing here has a TTL except agent memory (sliding, refreshed on every use);
 * a cache clear (which SCANs `ai-agents:*`) can never reach these keys.
 */
export class AgentStore {
  readonly prefix: string;

  constructor(
    private readonly redis: Redis,
    private readonly memoryTtlSeconds: number,
    service = 'ai-agents',
  ) {
    this.prefix = `state:${service}:`;
  }

  key = {
    agents: () => `${this.prefix}agents`,
    agent: (id: string) => `${this.prefix}agent:${id}`,
    agentConversations: (agentId: string) => `${this.prefix}agent:${agentId}:conversations`,
    conversation: (id: string) => `${this.prefix}conversation:${id}`,
    messages: (conversationId: string) => `${this.prefix}conversation:${conversationId}:messages`,
    memory: (agentId: string) => `${this.prefix}memory:${agentId}`,
  };

  // ---- agents ----

  async createAgent(agent: Agent): Promise<void> {
    await this.redis
      .multi()
      .set(this.key.agent(agent.id), JSON.stringify(agent))
      .zadd(this.key.agents(), Date.parse(agent.createdAt), agent.id)
      .exec()
      .then(check);
  }

  async getAgent(id: string): Promise<Agent | undefined> {
    return parse<Agent>(await this.redis.get(this.key.agent(id)));
  }

  async listAgents(limit: number, offset: number): Promise<{ items: Agent[]; total: number }> {
    const [ids, total] = await Promise.all([
      this.redis.zrange(this.key.agents(), String(offset), String(offset + limit - 1)),
      this.redis.zcard(this.key.agents()),
    ]);
    const items = ids.length ? (await this.redis.mget(ids.map((id) => this.key.agent(id)))).map((v) => parse<Agent>(v)) : [];
    return { items: items.filter((a): a is Agent => a !== undefined), total };
  }

  /** Removes the agent, its conversations with their messages, and its memory. False when unknown. */
  async deleteAgent(id: string): Promise<boolean> {
    const conversationIds = await this.redis.zrange(this.key.agentConversations(id), '0', '-1');
    const keys = [
      this.key.agent(id),
      this.key.agentConversations(id),
      this.key.memory(id),
      ...conversationIds.flatMap((c) => [this.key.conversation(c), this.key.messages(c)]),
    ];
    const res = check(await this.redis.multi().del(...keys).zrem(this.key.agents(), id).exec());
    return Number(res[1]) > 0;
  }

  // ---- conversations ----

  async createConversation(conversation: Conversation): Promise<void> {
    await this.redis
      .multi()
      .set(this.key.conversation(conversation.id), JSON.stringify(conversation))
      .zadd(this.key.agentConversations(conversation.agentId), Date.parse(conversation.createdAt), conversation.id)
      .exec()
      .then(check);
  }

  async getConversation(id: string): Promise<Conversation | undefined> {
    return parse<Conversation>(await this.redis.get(this.key.conversation(id)));
  }

  async countMessages(conversationId: string): Promise<number> {
    return this.redis.llen(this.key.messages(conversationId));
  }

  async listConversations(agentId: string, limit: number, offset: number): Promise<{ items: Conversation[]; total: number }> {
    const key = this.key.agentConversations(agentId);
    const [ids, total] = await Promise.all([this.redis.zrange(key, String(offset), String(offset + limit - 1)), this.redis.zcard(key)]);
    const items = ids.length
      ? (await this.redis.mget(ids.map((id) => this.key.conversation(id)))).map((v) => parse<Conversation>(v))
      : [];
    return { items: items.filter((c): c is Conversation => c !== undefined), total };
  }

  async deleteConversation(conversation: Conversation): Promise<void> {
    await this.redis
      .multi()
      .del(this.key.conversation(conversation.id), this.key.messages(conversation.id))
      .zrem(this.key.agentConversations(conversation.agentId), conversation.id)
      .exec()
      .then(check);
  }

  /** Deletes every conversation of the agent; answers how many there were. */
  async deleteAgentConversations(agentId: string): Promise<number> {
    const ids = await this.redis.zrange(this.key.agentConversations(agentId), '0', '-1');
    if (ids.length === 0) return 0;
    await this.redis
      .multi()
      .del(...ids.flatMap((c) => [this.key.conversation(c), this.key.messages(c)]))
      .zrem(this.key.agentConversations(agentId), ...ids)
      .exec()
      .then(check);
    return ids.length;
  }

  // ---- messages ----

  async appendMessage(conversationId: string, message: Message): Promise<void> {
    await this.redis.rpush(this.key.messages(conversationId), JSON.stringify(message));
  }

  /**
   * Appends only to an existing history (RPUSHX): a reply that arrives after its conversation was
   * deleted must not bring back an orphan list with no TTL. False when it was dropped.
   */
  async appendReply(conversationId: string, message: Message): Promise<boolean> {
    return (await this.redis.rpushx(this.key.messages(conversationId), JSON.stringify(message))) > 0;
  }

  /**
   * A page of history, oldest first. The cursor is the list index of the oldest message already
   * seen: the page holds the `limit` messages just before it, and `nextCursor` continues further back.
   */
  async pageMessages(
    conversationId: string,
    limit: number,
    before?: number,
  ): Promise<{ items: Message[]; nextCursor: string | null; total: number }> {
    const key = this.key.messages(conversationId);
    const total = await this.redis.llen(key);
    const end = Math.min(before ?? total, total);
    const start = Math.max(0, end - limit);
    const raw = end > start ? await this.redis.lrange(key, start, end - 1) : [];
    const items = raw.map((v) => parse<Message>(v)).filter((m): m is Message => m !== undefined);
    return { items, nextCursor: start > 0 ? String(start) : null, total };
  }

  // ---- memory (sliding TTL) ----

  /** Appends, trims to the newest `maxItems`, and refreshes the TTL, in one transaction. */
  async appendMemory(agentId: string, items: MemoryItem[], maxItems: number): Promise<void> {
    if (items.length === 0) return;
    const key = this.key.memory(agentId);
    await this.redis
      .multi()
      .rpush(key, ...items.map((i) => JSON.stringify(i)))
      .ltrim(key, -maxItems, -1)
      .pexpire(key, this.memoryTtlSeconds * 1000)
      .exec()
      .then(check);
  }

  /** The newest `limit` items (all when omitted), oldest first; the read refreshes the TTL. */
  async readMemory(agentId: string, limit?: number): Promise<{ items: MemoryItem[]; ttlSeconds: number | null }> {
    const key = this.key.memory(agentId);
    const res = check(
      await this.redis
        .multi()
        .lrange(key, limit ? -limit : 0, -1)
        .pexpire(key, this.memoryTtlSeconds * 1000)
        .ttl(key)
        .exec(),
    );
    const items = (res[0] as string[]).map((v) => parse<MemoryItem>(v)).filter((m): m is MemoryItem => m !== undefined);
    const ttl = Number(res[2]);
    return { items, ttlSeconds: ttl >= 0 ? ttl : null };
  }

  async clearMemory(agentId: string): Promise<number> {
    return this.redis.del(this.key.memory(agentId));
  }
}

function parse<T>(raw: string | null | undefined): T | undefined {
  if (raw === null || raw === undefined) return undefined;
  try {
    return JSON.parse(raw) as T;
  } catch {
    return undefined;
  }
}

/** MULTI results as values; throws the first command error (EXEC answers errors per command). */
function check(results: Array<[Error | null, unknown]> | null): unknown[] {
  if (!results) throw new Error('Redis transaction aborted');
  return results.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}
