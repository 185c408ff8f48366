import { describe, expect, it } from 'vitest';
import { scanKeys } from '@aicache/test-redis';
import { BuiltinExtractiveProvider, type ChatProvider, type ReplyInput } from '../src/providers/index.js';
import { build, testConfig, UNKNOWN_ID, useFixture } from './helpers.js';

const DB = 5;
const MEMORY_TTL = 12345;
const TOKEN = 'memory-test-admin-token';
const seen: ReplyInput[] = [];

/** The built-in provider, recording what it is given. */
class RecordingProvider implements ChatProvider {
  readonly id = 'recording';
  readonly inner = new BuiltinExtractiveProvider();
  async reply(input: ReplyInput) {
    seen.push(structuredClone(input));
    return this.inner.reply(input);
  }
}

const ENV = { CACHE_TTL_AGENT_MEMORY: String(MEMORY_TTL), CACHE_ADMIN_TOKEN: TOKEN };
const f = useFixture(DB, { env: ENV, overrides: { provider: new RecordingProvider() } });

/** The fixture app's config, for apps built beside it on the same Redis. */
function config() {
  return testConfig(f.redis.url, DB, { RETRIEVAL_PROXY_URL: f.proxy.url, ...ENV });
}

describe('agent memory', () => {
  async function setup(memoryMaxItems?: number) {
    const agent = (
      await f.app.inject({ method: 'POST', url: '/api/v1/agents', payload: { name: 'Mem', ...(memoryMaxItems ? { settings: { memoryMaxItems } } : {}) } })
    ).json();
    const conv = (await f.app.inject({ method: 'POST', url: `/api/v1/agents/${agent.id}/conversations`, payload: {} })).json();
    const say = async (content: string) => {
      const res = await f.app.inject({ method: 'POST', url: `/api/v1/conversations/${conv.id}/messages`, payload: { content } });
      expect(res.statusCode).toBe(201);
      return res.json();
    };
    return { agent, conv, say, key: `state:ai-agents:memory:${agent.id}` };
  }

  it('records each exchange with the TTL from CACHE_TTL_AGENT_MEMORY', async () => {
    const { agent, conv, say, key } = await setup();
    const answer = await say('What is RDB?');
    const ttl = await f.raw.ttl(key);
    expect(ttl).toBeGreaterThan(MEMORY_TTL - 60);
    expect(ttl).toBeLessThanOrEqual(MEMORY_TTL);

    const res = await f.app.inject({ method: 'GET', url: `/api/v1/agents/${agent.id}/memory` });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.items).toEqual([
      { role: 'user', content: 'What is RDB?', conversationId: conv.id, at: answer.userMessage.createdAt },
      { role: 'assistant', content: answer.reply.content, conversationId: conv.id, at: answer.reply.createdAt },
    ]);
    expect(body.ttl_seconds).toBeGreaterThan(MEMORY_TTL - 60);
    expect(body.ttl_seconds).toBeLessThanOrEqual(MEMORY_TTL);
  });

  it('reports agent memory under state in /cache/stats, not as a cache category that always read 0', async () => {
    const { say, key } = await setup();
    await say('What is AOF?');
    expect(await f.raw.exists(key)).toBe(1);
    const memoryKeys = await scanKeys(f.raw, 'state:ai-agents:memory:*');

    const res = await f.app.inject({ method: 'GET', url: '/api/v1/cache/stats' });
    expect(res.statusCode).toBe(200);
    const stats = res.json();
    expect(stats.service_stats.categories).not.toHaveProperty('agent_memory');
    expect(stats.state).toEqual({
      agents: await f.raw.zcard('state:ai-agents:agents'),
      agent_memory: { keys: memoryKeys.length, ttl: MEMORY_TTL, sliding: true },
    });
    expect(stats.state.agent_memory.keys).toBeGreaterThanOrEqual(1);
    // And the probe still works on a service with no cache category.
    const probe = await f.app.inject({ method: 'POST', url: '/api/v1/cache/test', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(probe.statusCode, probe.body).toBe(200);
  });

  it('slides: a read and a new exchange each refresh the TTL', async () => {
    const { agent, say, key } = await setup();
    await say('What is AOF?');
    await f.raw.pexpire(key, 5_000);
    expect(await f.raw.pttl(key)).toBeLessThanOrEqual(5_000);

    await f.app.inject({ method: 'GET', url: `/api/v1/agents/${agent.id}/memory` });
    expect(await f.raw.pttl(key)).toBeGreaterThan(5_000);

    await f.raw.pexpire(key, 5_000);
    await say('And RDB?');
    expect(await f.raw.pttl(key)).toBeGreaterThan(5_000);
    expect(await f.raw.ttl(key)).toBeGreaterThan(MEMORY_TTL - 60);
  });

  it('keeps at most memoryMaxItems items, the newest', async () => {
    const { agent, say, key } = await setup(3);
    for (let i = 1; i <= 4; i++) await say(`eviction question ${i}`);
    expect(await f.raw.llen(key)).toBe(3);
    const items = (await f.app.inject({ method: 'GET', url: `/api/v1/agents/${agent.id}/memory` })).json().items;
    expect(items.map((m: { role: string }) => m.role)).toEqual(['assistant', 'user', 'assistant']);
    expect(items[1].content).toBe('eviction question 4');
  });

  it('gives recent memory to the chat provider', async () => {
    const { say } = await setup();
    await say('first question about AOF');
    await say('second question about RDB');
    const last = seen.at(-1)!;
    expect(last.message).toBe('second question about RDB');
    expect(last.memory.map((m) => m.content)).toContain('first question about AOF');
    expect(last.context.map((c) => c.citation.documentId)).toContain('doc-persistence');
  });

  it('DELETE forgets the memory, and the next exchange starts a new one', async () => {
    const { agent, say, key } = await setup();
    await say('remember me');
    const del = await f.app.inject({ method: 'DELETE', url: `/api/v1/agents/${agent.id}/memory` });
    expect(del.statusCode).toBe(204);
    expect(await f.raw.exists(key)).toBe(0);
    expect((await f.app.inject({ method: 'GET', url: `/api/v1/agents/${agent.id}/memory` })).json()).toEqual({ items: [], ttl_seconds: null });
    await say('again');
    expect(await f.raw.llen(key)).toBe(2);
  });

  it('memory routes: unknown agent 404, bad id 400', async () => {
    for (const method of ['GET', 'DELETE'] as const) {
      expect((await f.app.inject({ method, url: `/api/v1/agents/${UNKNOWN_ID}/memory` })).statusCode).toBe(404);
      const bad = await f.app.inject({ method, url: '/api/v1/agents/xyz/memory' });
      expect(bad.statusCode).toBe(400);
      expect(bad.json().message).toContain('uuid');
    }
  });

  it('a cache clear by the admin never removes state or memory', async () => {
    const { agent, say, key } = await setup();
    await say('What does noeviction do?');
    const clear = await f.app.inject({ method: 'DELETE', url: '/api/v1/cache/clear', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(clear.statusCode).toBe(200);
    expect(await f.raw.llen(key)).toBe(2);
    expect((await f.app.inject({ method: 'GET', url: `/api/v1/agents/${agent.id}` })).statusCode).toBe(200);
  });
});

describe('restart', () => {
  it('everything is still there after close and a new app on the same Redis', async () => {
    const first = await build(config());
    const agent = (await first.inject({ method: 'POST', url: '/api/v1/agents', payload: { name: 'Durable', instructions: 'Stay.' } })).json();
    const conv = (await first.inject({ method: 'POST', url: `/api/v1/agents/${agent.id}/conversations`, payload: { title: 'Kept' } })).json();
    const answer = (await first.inject({ method: 'POST', url: `/api/v1/conversations/${conv.id}/messages`, payload: { content: 'What is AOF?' } })).json();
    const memoryBefore = (await first.inject({ method: 'GET', url: `/api/v1/agents/${agent.id}/memory` })).json();
    await first.close();

    const second = await build(config());
    try {
      expect((await second.inject({ method: 'GET', url: `/api/v1/agents/${agent.id}` })).json()).toEqual(agent);
      expect((await second.inject({ method: 'GET', url: `/api/v1/conversations/${conv.id}` })).json()).toEqual({ ...conv, messageCount: 2 });
      const history = (await second.inject({ method: 'GET', url: `/api/v1/conversations/${conv.id}/messages` })).json();
      expect(history.items).toEqual([answer.userMessage, answer.reply]);
      expect((await second.inject({ method: 'GET', url: `/api/v1/agents/${agent.id}/memory` })).json().items).toEqual(memoryBefore.items);
      expect((await second.inject({ method: 'GET', url: `/api/v1/agents/${agent.id}/conversations` })).json().items).toEqual([conv]);
    } finally {
      await second.close();
    }
  });
});
