import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisCluster, startRedisSentinel } from '@aicache/test-redis';
import { loadConfig } from '@aicache/service-kit';
import { Cluster, Redis } from 'ioredis';
import { ConfigSchema } from '../src/config.js';
import { AgentService } from '../src/domain/agent-service.js';
import { ConversationService } from '../src/domain/conversation-service.js';
import { contextPeer } from '../src/domain/retrieval.js';
import { AgentStore } from '../src/domain/store.js';
import { BuiltinExtractiveProvider } from '../src/providers/index.js';
import { PeerClient } from '@aicache/service-kit';
import { build, startFakeProxy, type FakeProxy } from './helpers.js';

/**
 * Agents, conversations, messages and memory on a Redis Cluster and through Sentinel, each chosen by env only
 * (REDIS_CLUSTER_NODES, REDIS_SENTINELS + REDIS_SENTINEL_NAME), as an operator would.
 */
interface Started {
  env: Record<string, string>;
  raw: Redis | Cluster;
  /** Every master's keys under a pattern (SCAN of each master on a Cluster). */
  keys(pattern: string): Promise<string[]>;
  stop(): Promise<void>;
}

interface Mode {
  name: 'cluster' | 'sentinel';
  prefix: string;
  start(): Promise<Started>;
}

async function scanAll(node: Redis, pattern: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, found] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    out.push(...found);
  } while (cursor !== '0');
  return out;
}

const modes: Mode[] = [
  {
    name: 'cluster',
    prefix: 'state:{ai-agents}:',
    async start() {
      const cluster = await startRedisCluster();
      const raw = new Cluster(cluster.nodes);
      await new Promise((resolve) => raw.once('ready', resolve));
      return {
        env: { REDIS_CLUSTER_NODES: cluster.nodesEnv },
        raw,
        keys: async (pattern) => (await Promise.all(raw.nodes('master').map((n) => scanAll(n, pattern)))).flat().sort(),
        stop: async () => (raw.disconnect(), cluster.stop()),
      };
    },
  },
  {
    name: 'sentinel',
    prefix: 'state:ai-agents:',
    async start() {
      const set = await startRedisSentinel();
      const raw = new Redis({ sentinels: set.sentinelNodes, name: set.name, db: 2 });
      return {
        env: { REDIS_SENTINELS: set.sentinelsEnv, REDIS_SENTINEL_NAME: set.name },
        raw,
        keys: async (pattern) => (await scanAll(raw, pattern)).sort(),
        stop: async () => (raw.disconnect(), set.stop()),
      };
    },
  },
];

describe.each(modes)('ai-agents on a $name', (mode) => {
  let proxy: FakeProxy;
  let started: Started;
  let app: Awaited<ReturnType<typeof build>>;

  beforeAll(async () => {
    proxy = await startFakeProxy();
    started = await mode.start();
    app = await build(
      loadConfig(ConfigSchema, { env: { NODE_ENV: 'test', AUTH_MODE: 'off', LOG_LEVEL: 'silent', RETRIEVAL_PROXY_URL: proxy.url, PEER_TIMEOUT_MS: '2000', ...started.env } }),
      { logger: false },
    );
    await app.ready();
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await started?.stop();
    await proxy?.close();
  });

  it('is ready, with the cache and the state answering', async () => {
    expect((await app.inject('/ready')).json()).toMatchObject({ status: 'ready', checks: { redis: { ok: true }, state: { ok: true } } });
  });

  it('keeps an agent, its conversation, messages and memory; counts memory over every master; deletes it all', async () => {
    const agent = (await app.inject({ method: 'POST', url: '/api/v1/agents', payload: { name: 'Ops', instructions: 'Answer.' } })).json();
    expect(agent.id).toEqual(expect.any(String));
    const conv = (await app.inject({ method: 'POST', url: `/api/v1/agents/${agent.id}/conversations`, payload: {} })).json();
    for (const content of ['What is AOF?', 'And RDB?']) {
      expect((await app.inject({ method: 'POST', url: `/api/v1/conversations/${conv.id}/messages`, payload: { content } })).statusCode).toBe(201);
    }
    const history = (await app.inject(`/api/v1/conversations/${conv.id}/messages`)).json();
    expect(history.items.map((m: { content: string }) => m.content).slice(0, 1)).toEqual(['What is AOF?']);
    expect(history.items).toHaveLength(4);
    const memory = (await app.inject(`/api/v1/agents/${agent.id}/memory`)).json();
    expect(memory.items).toHaveLength(4);
    expect(memory.ttl_seconds).toBeGreaterThan(0);

    const stats = await app.inject('/api/v1/cache/stats');
    expect(stats.statusCode).toBe(200);
    expect(stats.json().state).toMatchObject({ agents: 1, agent_memory: { keys: 1 } });

    // Every key of the agent under the mode's names (on a Cluster: one hash tag, one slot).
    expect(await started.keys('state:*')).toEqual(
      [
        `${mode.prefix}agent:${agent.id}`,
        `${mode.prefix}agent:${agent.id}:conversations`,
        `${mode.prefix}agents`,
        `${mode.prefix}conversation:${conv.id}`,
        `${mode.prefix}conversation:${conv.id}:messages`,
        `${mode.prefix}memory:${agent.id}`,
      ].sort(),
    );

    expect((await app.inject({ method: 'DELETE', url: `/api/v1/agents/${agent.id}` })).statusCode).toBe(204);
    expect(await started.keys('state:*')).toEqual([]);
  });

  it("keeps another tenant's records beside the default tenant's, under the same hash tag, and deletes them alone", async () => {
    const client = new PeerClient({ name: 'retrieval-proxy', baseUrl: proxy.url, timeoutMs: 2000, retries: 0 });
    const store = new AgentStore(started.raw, 600);
    try {
      const agents = new AgentService(store);
      const conversations = new ConversationService({ store, proxy: contextPeer(client, () => ({})), provider: new BuiltinExtractiveProvider() });
      const mine = (await app.inject({ method: 'POST', url: '/api/v1/agents', payload: { name: 'Default' } })).json();
      const theirs = await agents.create('acme', { name: 'Acme' });
      const conv = await conversations.create('acme', theirs.id, 'ops');
      await conversations.send({ tenant: 'acme' }, conv.id, 'What is AOF?');
      expect((await agents.memory('acme', theirs.id)).items).toHaveLength(2);
      expect((await app.inject(`/api/v1/agents/${theirs.id}`)).statusCode).toBe(404);
      expect((await app.inject('/api/v1/cache/stats')).json().state).toMatchObject({ agents: 2, agent_memory: { keys: 1 } });

      const t = `${mode.prefix}tenant:acme:`;
      expect(await started.keys(`${mode.prefix}tenant:*`)).toEqual(
        [`${t}agent:${theirs.id}`, `${t}agent:${theirs.id}:conversations`, `${t}agents`, `${t}conversation:${conv.id}`, `${t}conversation:${conv.id}:messages`, `${t}memory:${theirs.id}`].sort(),
      );
      if (started.raw instanceof Cluster) {
        const slots = new Set(await Promise.all((await started.keys('state:*')).map((k) => (started.raw as Cluster).cluster('KEYSLOT', k))));
        expect(slots.size).toBe(1);
      }

      await agents.delete('acme', theirs.id);
      expect(await started.keys(`${mode.prefix}tenant:*`)).toEqual([]);
      expect((await app.inject(`/api/v1/agents/${mine.id}`)).statusCode).toBe(200);
      expect((await app.inject({ method: 'DELETE', url: `/api/v1/agents/${mine.id}` })).statusCode).toBe(204);
      expect(await started.keys('state:*')).toEqual([]);
    } finally {
      store.calls.detach();
      await client.close();
    }
  });
});
