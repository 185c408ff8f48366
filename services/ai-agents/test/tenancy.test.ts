import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { getTestRedis, scanKeys, type TestRedis } from '@aicache/test-redis';
import { PeerClient } from '@aicache/service-kit';
import type { Redis } from 'ioredis';
import { AgentService } from '../src/domain/agent-service.js';
import { ConversationService } from '../src/domain/conversation-service.js';
import { contextPeer } from '../src/domain/retrieval.js';
import { AgentStore } from '../src/domain/store.js';
import { DEFAULT_SETTINGS, type Agent } from '../src/domain/types.js';
import { BuiltinExtractiveProvider } from '../src/providers/index.js';
import { rawClient, startFakeProxy, UNKNOWN_ID, wipe, type FakeProxy } from './helpers.js';

/**
 * Tenancy in the domain and the store, on a real Redis: two tenants run the same flows side by side, and neither
 * sees, lists, changes nor deletes the other's agents, conversations, messages or memory.
 */
const DB = 12;
const MEMORY_TTL = 3600;
const A = 'acme';
const B = 'globex';
const P = 'state:ai-agents:';

let redis: TestRedis;
let raw: Redis;
let storeClient: Redis;
let proxy: FakeProxy;
let client: PeerClient;
let store: AgentStore;
let agents: AgentService;
let conversations: ConversationService;

beforeAll(async () => {
  redis = await getTestRedis();
  raw = rawClient(redis.url, DB);
  storeClient = rawClient(redis.url, DB);
  proxy = await startFakeProxy();
  client = new PeerClient({ name: 'retrieval-proxy', baseUrl: proxy.url, timeoutMs: 2000, retries: 0 });
  store = new AgentStore(storeClient, MEMORY_TTL);
  agents = new AgentService(store);
  // The seam the service token goes through: here a header naming the tenant, to see what each call carries.
  const peer = contextPeer(client, (actingFor) => ({ 'x-acting-tenant': actingFor.tenant }));
  conversations = new ConversationService({ store, proxy: peer, provider: new BuiltinExtractiveProvider() });
});

afterAll(async () => {
  await client?.close();
  await proxy?.close();
  store?.calls.detach();
  storeClient?.disconnect();
  raw?.disconnect();
  await redis?.stop();
});

beforeEach(async () => {
  await wipe(raw);
  proxy.calls.length = 0;
});

/** What a failed call answered: what a client of the routes would see of it. */
async function failure(call: Promise<unknown>): Promise<{ statusCode: number; code: string; message: string }> {
  try {
    await call;
  } catch (err) {
    const e = err as { statusCode: number; code: string; message: string };
    return { statusCode: e.statusCode, code: e.code, message: e.message };
  }
  throw new Error('the call succeeded');
}

const notFound = (resource: string, id: string) => ({ statusCode: 404, code: 'NOT_FOUND', message: `${resource} '${id}' not found` });

/** An agent with a conversation, one exchange (so history and memory), in `tenant`. */
async function agentWithHistory(tenant: string, name = 'Helper') {
  const agent = await agents.create(tenant, { name });
  const conversation = await conversations.create(tenant, agent.id, 't');
  const exchange = await conversations.send({ tenant }, conversation.id, 'What is AOF persistence?');
  return { agent, conversation, exchange };
}

describe('agents belong to a tenant', () => {
  it("another tenant's agent answers exactly as an agent that does not exist, for every operation", async () => {
    const { agent } = await agentWithHistory(A);
    const id = agent.id;
    const expected = notFound('agent', id);

    expect(await failure(agents.get(B, id))).toEqual(expected);
    expect(await failure(agents.update(B, id, { name: 'Stolen' }))).toEqual(expected);
    expect(await failure(agents.memory(B, id))).toEqual(expected);
    expect(await failure(agents.clearMemory(B, id))).toEqual(expected);
    expect(await failure(agents.delete(B, id))).toEqual(expected);
    expect(await failure(conversations.create(B, id, 'x'))).toEqual(expected);
    expect(await failure(conversations.list(B, id, 10, 0))).toEqual(expected);
    expect(await failure(conversations.deleteAll(B, id))).toEqual(expected);

    // Nothing of A's changed, and B got no keys from the attempts.
    expect(await agents.get(A, id)).toEqual(agent);
    expect((await agents.memory(A, id)).items).toHaveLength(2);
    expect((await conversations.list(A, id, 10, 0)).total).toBe(1);
    expect(await scanKeys(raw, `${P}tenant:${B}:*`)).toEqual([]);

    // And once A deletes it, A's own answer is the one B had all along.
    await agents.delete(A, id);
    expect(await failure(agents.get(A, id))).toEqual(expected);
  });

  it('the same agent id in two tenants is two agents: changing or deleting one leaves the other whole', async () => {
    const id = UNKNOWN_ID;
    const make = (name: string): Agent => ({ id, name, instructions: '', settings: DEFAULT_SETTINGS, createdAt: new Date().toISOString() });
    await store.createAgent(A, make('Of A'));
    await store.createAgent(B, make('Of B'));
    const convA = await conversations.create(A, id, 'a');
    const convB = await conversations.create(B, id, 'b');
    await conversations.send({ tenant: A }, convA.id, 'What is RDB?');
    await conversations.send({ tenant: B }, convB.id, 'What is AOF?');

    expect((await agents.update(B, id, { name: 'Renamed B' })).name).toBe('Renamed B');
    expect((await agents.get(A, id)).name).toBe('Of A');
    expect(await failure(conversations.get(A, convB.id))).toEqual(notFound('conversation', convB.id));

    await agents.delete(B, id);
    expect(await failure(agents.get(B, id))).toEqual(notFound('agent', id));
    expect(await failure(conversations.get(B, convB.id))).toEqual(notFound('conversation', convB.id));
    expect(await scanKeys(raw, `${P}tenant:${B}:*`)).toEqual([]);
    // B has no agent left, so it leaves the set the figures read; A stays.
    expect(await raw.smembers(`${P}tenants`)).toEqual([A]);

    expect((await agents.get(A, id)).name).toBe('Of A');
    expect((await conversations.get(A, convA.id)).messageCount).toBe(2);
    expect((await agents.memory(A, id)).items.map((m) => m.content)[0]).toBe('What is RDB?');
    expect((await conversations.history(A, convA.id, 10)).total).toBe(2);
  });

  it('lists, pages and totals are per tenant', async () => {
    const ofA = [];
    for (let i = 0; i < 5; i++) ofA.push(await agents.create(A, { name: `a${i}` }));
    const ofB = [await agents.create(B, { name: 'b0' }), await agents.create(B, { name: 'b1' })];

    const listA = await agents.list(A, 100, 0);
    expect(listA.total).toBe(5);
    // Agents created in the same millisecond list by id: compare as sets, and pages against the whole list.
    const ids = (list: Agent[]) => list.map((a) => a.id).sort();
    expect(ids(listA.items)).toEqual(ids(ofA));
    const pageA = await agents.list(A, 2, 3);
    expect(pageA).toEqual({ items: listA.items.slice(3, 5), total: 5 });

    const listB = await agents.list(B, 100, 0);
    expect(listB.total).toBe(2);
    expect(ids(listB.items)).toEqual(ids(ofB));
    expect(await agents.list(B, 10, 2)).toEqual({ items: [], total: 2 });
    expect(await agents.list('initech', 10, 0)).toEqual({ items: [], total: 0 });

    // Deleting in B changes B's total only.
    await agents.delete(B, ofB[0]!.id);
    expect((await agents.list(B, 100, 0)).total).toBe(1);
    expect((await agents.list(A, 100, 0)).total).toBe(5);
  });

  it('the figures count agents and memory of every tenant', async () => {
    await agentWithHistory(A);
    await agentWithHistory(B);
    await agents.create(B, { name: 'no memory' });
    await agentWithHistory('default');
    expect(await store.figures()).toEqual({ agents: 4, agent_memory: { keys: 3, ttl: MEMORY_TTL, sliding: true } });
  });

  it('refuses to build a key from a tenant that is not one, and writes nothing', async () => {
    for (const bad of ['', 'Acme', 'a:b', 'a*', 'x'.repeat(64), 'tenant with spaces']) {
      await expect(agents.create(bad, { name: 'x' })).rejects.toThrow(/invalid tenant/);
    }
    expect(await scanKeys(raw, `${P}*`)).toEqual([]);
  });
});

describe('conversations and messages belong to the tenant of their agent', () => {
  it("another tenant's conversation answers exactly as one that does not exist, and is left as it was", async () => {
    const { conversation, agent } = await agentWithHistory(A);
    const id = conversation.id;
    const expected = notFound('conversation', id);
    const calls = proxy.calls.length;

    expect(await failure(conversations.get(B, id))).toEqual(expected);
    expect(await failure(conversations.history(B, id, 10))).toEqual(expected);
    expect(await failure(conversations.send({ tenant: B }, id, 'Tell me about AOF'))).toEqual(expected);
    expect(await failure(conversations.delete(B, id))).toEqual(expected);
    expect(await failure(conversations.get(B, UNKNOWN_ID))).toEqual(notFound('conversation', UNKNOWN_ID));
    // The refused message never reached the proxy, and nothing was written anywhere.
    expect(proxy.calls.length).toBe(calls);
    expect(await conversations.get(A, id)).toEqual({ ...conversation, messageCount: 2 });
    expect((await agents.memory(A, agent.id)).items).toHaveLength(2);
    expect(await scanKeys(raw, `${P}tenant:${B}:*`)).toEqual([]);
  });

  it('both tenants talk at once; each history, memory and conversation list holds its own only', async () => {
    const a = await agents.create(A, { name: 'A' });
    const b = await agents.create(B, { name: 'B' });
    const convsA = [await conversations.create(A, a.id, '1'), await conversations.create(A, a.id, '2')];
    const convB = await conversations.create(B, b.id, '1');
    await Promise.all([
      conversations.send({ tenant: A }, convsA[0]!.id, 'What is AOF?'),
      conversations.send({ tenant: B }, convB.id, 'Which eviction policy?'),
      conversations.send({ tenant: A }, convsA[1]!.id, 'What is RDB?'),
    ]);

    const listA = await conversations.list(A, a.id, 10, 0);
    expect(listA.total).toBe(2);
    expect(listA.items.map((c) => c.id).sort()).toEqual(convsA.map((c) => c.id).sort());
    expect(await conversations.list(B, b.id, 10, 0)).toEqual({ items: [convB], total: 1 });
    expect((await agents.memory(A, a.id)).items.filter((m) => m.role === 'user').map((m) => m.content).sort()).toEqual(['What is AOF?', 'What is RDB?']);
    expect((await agents.memory(B, b.id)).items.filter((m) => m.role === 'user').map((m) => m.content)).toEqual(['Which eviction policy?']);
    expect((await conversations.history(B, convB.id, 10)).items.map((m) => m.content)[0]).toBe('Which eviction policy?');

    // Each context call said whom it acted for.
    const tenants = proxy.calls.map((c) => [c.body.query, c.headers['x-acting-tenant']]);
    expect(tenants.sort()).toEqual([
      ['What is AOF?', A],
      ['What is RDB?', A],
      ['Which eviction policy?', B],
    ]);

    // Deleting every conversation of B's agent leaves A's.
    expect(await conversations.deleteAll(B, b.id)).toBe(1);
    expect((await conversations.list(A, a.id, 10, 0)).total).toBe(2);
    expect(await failure(conversations.deleteAll(A, b.id))).toEqual(notFound('agent', b.id));
  });

  it('clearing memory in one tenant leaves the other tenant’s memory', async () => {
    const { agent: a } = await agentWithHistory(A);
    const { agent: b } = await agentWithHistory(B);
    await agents.clearMemory(B, b.id);
    expect((await agents.memory(B, b.id)).items).toEqual([]);
    expect((await agents.memory(A, a.id)).items).toHaveLength(2);
  });
});

describe('records stored before tenancy', () => {
  /** Writes an agent with a conversation, two messages and memory in the layout used before tenancy. */
  async function writeOldLayout(n: number) {
    const agent: Agent = { id: `10000000-0000-4000-8000-00000000000${n}`, name: `Old ${n}`, instructions: 'Be old.', settings: DEFAULT_SETTINGS, createdAt: new Date(Date.UTC(2025, 0, n)).toISOString() };
    const conversation = { id: `20000000-0000-4000-8000-00000000000${n}`, agentId: agent.id, title: 'before', createdAt: agent.createdAt };
    const messages = [
      { id: `30000000-0000-4000-8000-00000000000${n}`, role: 'user', content: `old question ${n}`, createdAt: agent.createdAt },
      { id: `40000000-0000-4000-8000-00000000000${n}`, role: 'assistant', content: `old answer ${n}`, citations: [], createdAt: agent.createdAt },
    ];
    const memory = messages.map((m) => ({ role: m.role, content: m.content, conversationId: conversation.id, at: m.createdAt }));
    await raw
      .multi()
      .set(`${P}agent:${agent.id}`, JSON.stringify(agent))
      .zadd(`${P}agents`, Date.parse(agent.createdAt), agent.id)
      .set(`${P}conversation:${conversation.id}`, JSON.stringify(conversation))
      .zadd(`${P}agent:${agent.id}:conversations`, Date.parse(conversation.createdAt), conversation.id)
      .rpush(`${P}conversation:${conversation.id}:messages`, ...messages.map((m) => JSON.stringify(m)))
      .rpush(`${P}memory:${agent.id}`, ...memory.map((m) => JSON.stringify(m)))
      .pexpire(`${P}memory:${agent.id}`, 60_000)
      .exec();
    return { agent, conversation, messages, memory };
  }

  it('belong to the default tenant: readable, listable, and usable as before', async () => {
    const olds = [await writeOldLayout(1), await writeOldLayout(2)];
    const [old] = olds;
    const fresh = await agents.create('default', { name: 'New' });

    expect(await agents.list('default', 100, 0)).toEqual({ items: [...olds.map((o) => o.agent), fresh], total: 3 });
    expect(await agents.get('default', old!.agent.id)).toEqual(old!.agent);
    expect(await conversations.list('default', old!.agent.id, 10, 0)).toEqual({ items: [old!.conversation], total: 1 });
    expect(await conversations.get('default', old!.conversation.id)).toEqual({ ...old!.conversation, messageCount: 2 });
    expect((await conversations.history('default', old!.conversation.id, 10)).items).toEqual(old!.messages);
    const memory = await agents.memory('default', old!.agent.id);
    expect(memory.items).toEqual(old!.memory);
    // Reading refreshed the sliding TTL to the store's.
    expect(memory.ttlSeconds).toBeGreaterThan(MEMORY_TTL - 60);

    // The conversation goes on where it was.
    await conversations.send({ tenant: 'default' }, old!.conversation.id, 'What is AOF?');
    expect((await conversations.history('default', old!.conversation.id, 10)).total).toBe(4);
    expect((await agents.memory('default', old!.agent.id)).items).toHaveLength(4);
    expect((await store.figures()).agents).toBe(3);

    // Another tenant sees none of it.
    expect(await agents.list(A, 100, 0)).toEqual({ items: [], total: 0 });
    expect(await failure(agents.get(A, old!.agent.id))).toEqual(notFound('agent', old!.agent.id));
    expect(await failure(conversations.history(A, old!.conversation.id, 10))).toEqual(notFound('conversation', old!.conversation.id));

    // Deleting an old agent takes all of its old keys, and only its own.
    await agents.delete('default', old!.agent.id);
    const left = await scanKeys(raw, `${P}*`);
    expect(left.filter((k) => k.includes(old!.agent.id) || k.includes(old!.conversation.id))).toEqual([]);
    expect(left).toContain(`${P}agent:${olds[1]!.agent.id}`);
    expect((await agents.list('default', 100, 0)).total).toBe(2);
  });
});
