import { DEFAULT_TENANT, TENANT_RE } from '@aicache/auth';
import { isCluster, KEY_COUNT_LIMIT, type RedisClient } from '@aicache/cache';
import { DEADLINE_GUARD, errors, stateKeyPrefix, StateCalls, type StateReplication } from '@aicache/service-kit';
import type { Agent, Conversation, MemoryItem, Message } from './types.js';

/*
 * Every write is one script that starts with the deadline guard (ARGV[1]), so a write that timed out never lands
 * later, and that checks what it writes under still exists, so nothing is written for an agent or a conversation
 * deleted meanwhile: deletes run as one script too, and whatever runs beside them either lands before (and is
 * deleted with the rest) or finds its owner gone (and writes nothing).
 */

/** KEYS: agent, agents, tenants. ARGV: deadline, agent JSON, score, id, tenant ('' for the default tenant). */
const CREATE_AGENT = `${DEADLINE_GUARD}
redis.call('SET', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
if ARGV[5] ~= '' then redis.call('SADD', KEYS[3], ARGV[5]) end
return 1`;

/** Compare-and-set. KEYS: agent. ARGV: deadline, expected JSON, new JSON. 1 done, 0 changed meanwhile, -1 gone. */
const UPDATE_AGENT = `${DEADLINE_GUARD}
local current = redis.call('GET', KEYS[1])
if not current then return -1 end
if current ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[3])
return 1`;

/**
 * Deletes the conversations a sorted set lists: for each member m, `<prefix>conversation:<m>` and its
 * messages, where the prefix is the tenant's. Shared by both scripts that remove conversations.
 */
const DELETE_CONVERSATIONS_OF = `
local function delete_conversations(set_key, prefix)
  local ids = redis.call('ZRANGE', set_key, 0, -1)
  local keys = {}
  for _, c in ipairs(ids) do
    keys[#keys + 1] = prefix .. 'conversation:' .. c
    keys[#keys + 1] = prefix .. 'conversation:' .. c .. ':messages'
  end
  for i = 1, #keys, 1000 do redis.call('DEL', unpack(keys, i, math.min(i + 999, #keys))) end
  redis.call('DEL', set_key)
  return #ids
end
`;

/**
 * KEYS: agent, agents, agent conversations, memory, tenants. ARGV: deadline, id, tenant key prefix, tenant ('' for
 * the default tenant). Answers 1 when the agent existed. A tenant left with no agent leaves the tenants set.
 */
const DELETE_AGENT = `${DEADLINE_GUARD}${DELETE_CONVERSATIONS_OF}
local existed = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
delete_conversations(KEYS[3], ARGV[3])
redis.call('DEL', KEYS[4])
if ARGV[4] ~= '' and redis.call('EXISTS', KEYS[2]) == 0 then redis.call('SREM', KEYS[5], ARGV[4]) end
return existed`;

/** KEYS: agent conversations. ARGV: deadline, tenant key prefix. Answers how many conversations there were. */
const DELETE_AGENT_CONVERSATIONS = `${DEADLINE_GUARD}${DELETE_CONVERSATIONS_OF}
return delete_conversations(KEYS[1], ARGV[2])`;

/** KEYS: agent, conversation, agent conversations. ARGV: deadline, JSON, score, id. 0 when the agent is gone. */
const CREATE_CONVERSATION = `${DEADLINE_GUARD}
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
return 1`;

/** KEYS: conversation, messages, agent conversations. ARGV: deadline, id. */
const DELETE_CONVERSATION = `${DEADLINE_GUARD}
redis.call('ZREM', KEYS[3], ARGV[2])
return redis.call('DEL', KEYS[1], KEYS[2])`;

/** KEYS: conversation, messages. ARGV: deadline, message JSON. 0 when the conversation is gone. */
const APPEND_MESSAGE = `${DEADLINE_GUARD}
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('RPUSH', KEYS[2], ARGV[2])`;

/** KEYS: agent, memory. ARGV: deadline, ttl ms, max items, items... 0 when the agent is gone. */
const APPEND_MEMORY = `${DEADLINE_GUARD}
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('RPUSH', KEYS[2], unpack(ARGV, 4))
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[3]), -1)
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1`;

/** KEYS: memory. ARGV: deadline. */
const CLEAR_MEMORY = `${DEADLINE_GUARD}
return redis.call('DEL', KEYS[1])`;

/** How many times an update retries when the agent changed between its read and its write. */
const UPDATE_ATTEMPTS = 3;

/** The keys of one tenant's records. Every key of every tenant shares the store's prefix, so one slot on a Cluster. */
export interface TenantKeys {
  /** What every key of the tenant starts with (the Lua deletes build conversation keys from it). */
  readonly base: string;
  agents(): string;
  agent(id: string): string;
  agentConversations(agentId: string): string;
  conversation(id: string): string;
  messages(conversationId: string): string;
  memory(agentId: string): string;
}

/**
 * Agents, conversations, messages and agent memory, kept as state under `state:ai-agents:*` on the
 * state Redis client (`state:{ai-agents}:*` on a Cluster: one slot, so every script and transaction below runs there).
 * Nothing here has a TTL except agent memory (sliding, refreshed on every use);
 * a cache clear (which SCANs `ai-agents:*`) can never reach these keys. Every call is bounded; a failure
 * is the kit's StateUnavailable (503, Retry-After), and a write that failed was not applied.
 *
 * Every record belongs to one tenant, and every call names it: a tenant's keys are
 * `<prefix>tenant:<tenant>:agent:<id>` and so on, with its own sorted sets, so lists, totals and deletes never
 * reach another tenant's records, and another tenant's id is simply not found. The default tenant keeps the
 * layout from before tenancy (`<prefix>agent:<id>`, no tenant segment): records stored then are its records,
 * readable and listable as they are, with no migration. The two layouts cannot meet: no key of the old layout
 * starts with `tenant:`. `<prefix>tenants` lists the other tenants that have agents, for the figures.
 */
export class AgentStore {
  readonly prefix: string;
  readonly calls: StateCalls;
  private readonly tenantKeys = new Map<string, TenantKeys>();

  constructor(
    redis: RedisClient,
    private readonly memoryTtlSeconds: number,
    service = 'ai-agents',
    timeoutMs = 5000,
    replication?: StateReplication,
  ) {
    this.prefix = stateKeyPrefix(service, redis);
    this.calls = new StateCalls(redis, { name: 'agent store', timeoutMs, ...(replication ? { replication } : {}) });
  }

  /** The set of the tenants other than the default one that have agents. */
  private tenantsKey(): string {
    return `${this.prefix}tenants`;
  }

  /**
   * The keys of a tenant's records. A tenant that does not match TENANT_PATTERN is a programming error (the auth
   * layer hands out only valid ones) and throws rather than build a key from it.
   */
  keys(tenant: string): TenantKeys {
    let keys = this.tenantKeys.get(tenant);
    if (keys) return keys;
    if (!TENANT_RE.test(tenant)) throw new Error(`invalid tenant ${JSON.stringify(tenant).slice(0, 80)}`);
    const base = tenant === DEFAULT_TENANT ? this.prefix : `${this.prefix}tenant:${tenant}:`;
    keys = {
      base,
      agents: () => `${base}agents`,
      agent: (id) => `${base}agent:${id}`,
      agentConversations: (agentId) => `${base}agent:${agentId}:conversations`,
      conversation: (id) => `${base}conversation:${id}`,
      messages: (conversationId) => `${base}conversation:${conversationId}:messages`,
      memory: (agentId) => `${base}memory:${agentId}`,
    };
    // Tenants are few; the cap only guards against an unbounded map.
    if (this.tenantKeys.size >= 10_000) this.tenantKeys.clear();
    this.tenantKeys.set(tenant, keys);
    return keys;
  }

  /** Runs a write script: KEYS as given, ARGV the deadline and then `args`. */
  private async script(what: string, lua: string, keys: string[], args: Array<string | number>): Promise<number> {
    return Number(await this.calls.write(what, (c, deadline) => c.eval(lua, keys.length, ...keys, deadline, ...args)));
  }

  /** A page of the JSON values whose ids a sorted set lists, in its order, with the set's size. */
  private page<T>(what: string, setKey: string, keyOf: (id: string) => string, limit: number, offset: number): Promise<{ items: T[]; total: number }> {
    return this.calls.read(what, async (c) => {
      const [ids, total] = await Promise.all([c.zrange(setKey, String(offset), String(offset + limit - 1)), c.zcard(setKey)]);
      const items = ids.length ? (await c.mget(ids.map(keyOf))).map((v) => parse<T>(v)) : [];
      return { items: items.filter((x): x is T => x !== undefined), total };
    });
  }

  // ---- agents ----

  async createAgent(tenant: string, agent: Agent): Promise<void> {
    const k = this.keys(tenant);
    const keys = [k.agent(agent.id), k.agents(), this.tenantsKey()];
    await this.script('agent write', CREATE_AGENT, keys, [JSON.stringify(agent), Date.parse(agent.createdAt), agent.id, tenant === DEFAULT_TENANT ? '' : tenant]);
  }

  async getAgent(tenant: string, id: string): Promise<Agent | undefined> {
    const key = this.keys(tenant).agent(id);
    return parse<Agent>(await this.calls.read('agent read', (c) => c.get(key)));
  }

  /**
   * Applies `change` to the stored agent and writes it back only if nobody wrote it meanwhile (and it still
   * exists); undefined when the agent does not exist (or was deleted during the update).
   */
  async updateAgent(tenant: string, id: string, change: (agent: Agent) => Agent): Promise<Agent | undefined> {
    const key = this.keys(tenant).agent(id);
    for (let attempt = 1; ; attempt++) {
      const raw = await this.calls.read('agent read', (c) => c.get(key));
      const current = parse<Agent>(raw);
      if (raw === null || !current) return undefined;
      const next = change(current);
      const done = await this.script('agent update', UPDATE_AGENT, [key], [raw, JSON.stringify(next)]);
      if (done === 1) return next;
      if (done < 0) return undefined;
      if (attempt >= UPDATE_ATTEMPTS) throw errors.Conflict(`agent '${id}' was changed by other requests during this update; try again`);
    }
  }

  listAgents(tenant: string, limit: number, offset: number): Promise<{ items: Agent[]; total: number }> {
    const k = this.keys(tenant);
    return this.page('agent list', k.agents(), k.agent, limit, offset);
  }

  /** Removes the agent, its conversations with their messages, and its memory, in one script. False when unknown. */
  async deleteAgent(tenant: string, id: string): Promise<boolean> {
    const k = this.keys(tenant);
    const keys = [k.agent(id), k.agents(), k.agentConversations(id), k.memory(id), this.tenantsKey()];
    return (await this.script('agent delete', DELETE_AGENT, keys, [id, k.base, tenant === DEFAULT_TENANT ? '' : tenant])) > 0;
  }

  // ---- conversations ----

  /** False when the agent does not exist (any more) in the tenant: nothing was written. */
  async createConversation(tenant: string, conversation: Conversation): Promise<boolean> {
    const { id, agentId } = conversation;
    const k = this.keys(tenant);
    const keys = [k.agent(agentId), k.conversation(id), k.agentConversations(agentId)];
    return (await this.script('conversation write', CREATE_CONVERSATION, keys, [JSON.stringify(conversation), Date.parse(conversation.createdAt), id])) === 1;
  }

  async getConversation(tenant: string, id: string): Promise<Conversation | undefined> {
    const key = this.keys(tenant).conversation(id);
    return parse<Conversation>(await this.calls.read('conversation read', (c) => c.get(key)));
  }

  async countMessages(tenant: string, conversationId: string): Promise<number> {
    const key = this.keys(tenant).messages(conversationId);
    return this.calls.read('message count', (c) => c.llen(key));
  }

  listConversations(tenant: string, agentId: string, limit: number, offset: number): Promise<{ items: Conversation[]; total: number }> {
    const k = this.keys(tenant);
    return this.page('conversation list', k.agentConversations(agentId), k.conversation, limit, offset);
  }

  async deleteConversation(tenant: string, conversation: Conversation): Promise<void> {
    const { id, agentId } = conversation;
    const k = this.keys(tenant);
    await this.script('conversation delete', DELETE_CONVERSATION, [k.conversation(id), k.messages(id), k.agentConversations(agentId)], [id]);
  }

  /** Deletes every conversation of the agent; answers how many there were. */
  async deleteAgentConversations(tenant: string, agentId: string): Promise<number> {
    const k = this.keys(tenant);
    return this.script('conversation delete', DELETE_AGENT_CONVERSATIONS, [k.agentConversations(agentId)], [k.base]);
  }

  // ---- messages ----

  /** Appends to the history of an existing conversation; false when it is gone (deleted meanwhile): nothing written. */
  async appendMessage(tenant: string, conversationId: string, message: Message): Promise<boolean> {
    const k = this.keys(tenant);
    const keys = [k.conversation(conversationId), k.messages(conversationId)];
    return (await this.script('message write', APPEND_MESSAGE, keys, [JSON.stringify(message)])) > 0;
  }

  /**
   * A page of history, oldest first. The cursor is the list index of the oldest message already
   * seen: the page holds the `limit` messages just before it, and `nextCursor` continues further back.
   */
  async pageMessages(
    tenant: string,
    conversationId: string,
    limit: number,
    before?: number,
  ): Promise<{ items: Message[]; nextCursor: string | null; total: number }> {
    const key = this.keys(tenant).messages(conversationId);
    return this.calls.read('message read', async (c) => {
      const total = await c.llen(key);
      const end = Math.min(before ?? total, total);
      const start = Math.max(0, end - limit);
      const raw = end > start ? await c.lrange(key, start, end - 1) : [];
      const items = raw.map((v) => parse<Message>(v)).filter((m): m is Message => m !== undefined);
      return { items, nextCursor: start > 0 ? String(start) : null, total };
    });
  }

  // ---- memory (sliding TTL) ----

  /** Appends, trims to the newest `maxItems`, and refreshes the TTL, in one script; false when the agent is gone. */
  async appendMemory(tenant: string, agentId: string, items: MemoryItem[], maxItems: number): Promise<boolean> {
    if (items.length === 0) return true;
    const k = this.keys(tenant);
    const args = [this.memoryTtlSeconds * 1000, maxItems, ...items.map((i) => JSON.stringify(i))];
    return (await this.script('memory write', APPEND_MEMORY, [k.agent(agentId), k.memory(agentId)], args)) === 1;
  }

  /** The newest `limit` items (all when omitted), oldest first; the read refreshes the TTL. */
  async readMemory(tenant: string, agentId: string, limit?: number): Promise<{ items: MemoryItem[]; ttlSeconds: number | null }> {
    const key = this.keys(tenant).memory(agentId);
    // A refresh landing late only extends memory that is still there: a read, not a guarded write.
    const res = await this.calls.read('memory read', async (c) =>
      check(
        await c
          .multi()
          .lrange(key, limit ? -limit : 0, -1)
          .pexpire(key, this.memoryTtlSeconds * 1000)
          .ttl(key)
          .exec(),
      ),
    );
    const items = (res[0] as string[]).map((v) => parse<MemoryItem>(v)).filter((m): m is MemoryItem => m !== undefined);
    const ttl = Number(res[2]);
    return { items, ttlSeconds: ttl >= 0 ? ttl : null };
  }

  async clearMemory(tenant: string, agentId: string): Promise<number> {
    return this.script('memory delete', CLEAR_MEMORY, [this.keys(tenant).memory(agentId)], []);
  }

  // ---- figures for GET /api/v1/cache/stats (state, not cache) ----

  /**
   * How many agents there are in all tenants, and how many have memory now (SCAN of the memory keys; null when the
   * DB holds more than KEY_COUNT_LIMIT keys, where counting would cost too much), with the memory's sliding TTL.
   */
  async figures(): Promise<{ agents: number; agent_memory: { keys: number | null; ttl: number; sliding: true } }> {
    // A memory key of any tenant: `<prefix>memory:<id>` (default tenant) or `<prefix>tenant:<t>:memory:<id>`.
    const memoryKey = new RegExp(`^${escapeRegExp(this.prefix)}(?:tenant:[^:]+:)?memory:[^:]+$`);
    return this.calls.read('state figures', async (c) => {
      // On a Cluster, SCAN and DBSIZE answer for one node: ask every master.
      const nodes = isCluster(c) ? c.nodes('master') : [c];
      const tenants = await c.smembers(this.tenantsKey());
      const agentSets = [DEFAULT_TENANT, ...tenants.filter((t) => t !== DEFAULT_TENANT && TENANT_RE.test(t))].map((t) => this.keys(t).agents());
      const [counts, sizes] = await Promise.all([Promise.all(agentSets.map((k) => c.zcard(k))), Promise.all(nodes.map((n) => n.dbsize()))]);
      const agents = counts.reduce((a, b) => a + b, 0);
      let keys: number | null = null;
      if (sizes.reduce((a, b) => a + b, 0) <= KEY_COUNT_LIMIT) {
        keys = 0;
        for (const node of nodes) {
          let cursor = '0';
          do {
            const [next, found] = await node.scan(cursor, 'MATCH', `${this.prefix}*memory:*`, 'COUNT', 1000);
            cursor = next;
            keys += found.filter((k) => memoryKey.test(k)).length;
          } while (cursor !== '0');
        }
      }
      return { agents, agent_memory: { keys, ttl: this.memoryTtlSeconds, sliding: true as const } };
    });
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
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
