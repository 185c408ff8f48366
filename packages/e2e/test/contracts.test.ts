import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { Value } from 'typebox/value';
import { EmbeddingsRequest, EmbeddingsResponse } from '@aicache/contracts';
import { scanKeys } from '@aicache/test-redis';
import { bearer, call, startStack, type Stack } from './stack.js';

/**
 * The contracts between the services, over real HTTP between real processes: ai-agents accepts exactly what the
 * proxy accepts and uses the proxy's context as sent; the worker takes every embeddings request the contract
 * allows the proxy to send and answers what the proxy reads.
 */

const DOCS = [
  {
    id: 'c-aof',
    title: 'Append only file',
    metadata: { lang: 'en', year: 2024 },
    text:
      'The append only file logs every write operation the server receives. With appendfsync everysec the file is ' +
      'flushed to disk once per second, so a crash loses at most one second of writes.',
  },
  {
    id: 'c-eviction',
    title: 'Eviction',
    metadata: { lang: 'en', year: 2023 },
    text: 'The allkeys-lru policy evicts the least recently used keys when memory is full; noeviction refuses writes instead.',
  },
] as const;

let stack: Stack;
let db1: Redis;
const proxy = (m: string, p: string, o?: Parameters<typeof call>[3]) => call(stack.proxy.url, m, p, o);
const agents = (m: string, p: string, o?: Parameters<typeof call>[3]) => call(stack.agents.url, m, p, o);
const worker = (m: string, p: string, o?: Parameters<typeof call>[3]) => call(stack.worker.url, m, p, o);

beforeAll(async () => {
  stack = await startStack();
  db1 = stack.db(1);
  for (const doc of DOCS) {
    const res = await proxy('POST', '/api/v1/documents', { body: doc });
    expect(res.status, res.text).toBe(201);
  }
});

afterAll(async () => {
  await stack?.stop();
});

async function conversation(settings?: object): Promise<{ agentId: string; conversationId: string }> {
  const agent = await agents('POST', '/api/v1/agents', { body: { name: 'Contract', ...(settings ? { settings } : {}) } });
  expect(agent.status, agent.text).toBe(201);
  const conv = await agents('POST', `/api/v1/agents/${agent.json.id}/conversations`, { body: {} });
  expect(conv.status, conv.text).toBe(201);
  return { agentId: agent.json.id, conversationId: conv.json.id };
}

describe('ai-agents and retrieval-proxy, as real processes', () => {
  it('refuse and accept the same agent filters: ai-agents answers 400 at creation and update exactly when the proxy would', async () => {
    const cases: Array<Record<string, unknown>> = [
      { lang: 'en' },
      { year: [2023, 2024], lang: 'en' },
      { documentId: 'c-aof' },
      { ['k'.repeat(64)]: true },
      { 'team:name': 'billing' },
      { ['k'.repeat(65)]: 'x' },
      { ['k'.repeat(100)]: 'x' },
      { lang: [] },
      { lang: 'x'.repeat(1001) },
      { year: Array.from({ length: 51 }, (_, i) => i) },
      Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`k${i}`, i])),
      { lang: null },
      { lang: { en: true } },
    ];
    const { agentId } = await conversation();
    const verdicts: string[] = [];
    for (const filters of cases) {
      const search = await proxy('POST', '/api/v1/search', { body: { query: 'append only file', filters } });
      const created = await agents('POST', '/api/v1/agents', { body: { name: 'Filtered', settings: { filters } } });
      const updated = await agents('PATCH', `/api/v1/agents/${agentId}`, { body: { settings: { filters } } });
      const proxyAccepts = search.status === 200;
      expect([200, 400], search.text).toContain(search.status);
      verdicts.push(`${JSON.stringify(filters).slice(0, 60)}: proxy ${search.status}, create ${created.status}, update ${updated.status}`);
      expect(created.status === 201, verdicts.at(-1)).toBe(proxyAccepts);
      expect(updated.status === 200, verdicts.at(-1)).toBe(proxyAccepts);
      if (!proxyAccepts) expect(created.json.message).toMatch(/filters/);
    }
    // Both kinds were tried.
    expect(verdicts.filter((v) => v.includes('proxy 400')).length).toBeGreaterThan(5);
    expect(verdicts.filter((v) => v.includes('proxy 200')).length).toBeGreaterThan(3);
  });

  it('answers a 16,000-character message (the proxy takes queries of up to 2,000) with a citation of the right document', async () => {
    const { conversationId } = await conversation();
    const question = 'How often does appendfsync everysec flush the append only file?';
    const content = `${question} ${'Some pasted notes follow, nothing in them matters here. '.repeat(400)}`.slice(0, 16_000);
    expect(content.length).toBe(16_000);
    const res = await agents('POST', `/api/v1/conversations/${conversationId}/messages`, { body: { content }, timeoutMs: 30_000 });
    expect(res.status, res.text).toBe(201);
    expect(res.json.citations.map((c: { documentId: string }) => c.documentId)).toContain('c-aof');
  });

  it("cites the proxy's context as sent: each reply citation is the proxy's own, under the proxy's number", async () => {
    const settings = { contextLimit: 2, maxContextChars: 1000, filters: { lang: 'en' } };
    const { conversationId } = await conversation(settings);
    const content = 'Which policy evicts the least recently used keys when memory is full?';
    const res = await agents('POST', `/api/v1/conversations/${conversationId}/messages`, { body: { content } });
    expect(res.status, res.text).toBe(201);
    expect(res.json.citations.length).toBeGreaterThan(0);

    // The same request ai-agents made (its query rule leaves a short message as it is).
    const context = await proxy('POST', '/api/v1/context', { body: { query: content, limit: 2, maxChars: 1000, filters: { lang: 'en' } } });
    expect(context.status).toBe(200);
    expect(context.headers.get('x-cache')).toBe('hit');
    const sent = context.json.sections.map((s: { citation: unknown }) => s.citation);
    for (const citation of res.json.citations) expect(sent).toContainEqual(citation);
    for (const citation of res.json.citations) expect(res.json.reply.content).toContain(`[${citation.id}]`);
  });

  it("answers 409 naming the setting when the agent asks for hybrid ranking the proxy's engine has not, and answers once it is changed", async () => {
    // This stack's proxy runs the Redis engine: it refuses hybrid ranking (400), which the agent reports as its own setting.
    const { agentId, conversationId } = await conversation({ hybrid: true });
    const content = 'Which policy evicts the least recently used keys?';
    const refused = await agents('POST', `/api/v1/conversations/${conversationId}/messages`, { body: { content } });
    expect(refused.status, refused.text).toBe(409);
    expect(refused.json.message).toBe(
      `agent '${agentId}' asks for hybrid ranking, which retrieval-proxy refuses (retrieval-proxy answered 400: hybrid ranking needs the pgvector ` +
        `engine (RETRIEVAL_INDEX=pgvector); this index is redis); change it with PATCH /api/v1/agents/${agentId} {"settings": {"hybrid": false}}`,
    );
    expect((await agents('PATCH', `/api/v1/agents/${agentId}`, { body: { settings: { hybrid: false } } })).status).toBe(200);
    const answered = await agents('POST', `/api/v1/conversations/${conversationId}/messages`, { body: { content } });
    expect(answered.status, answered.text).toBe(201);
    expect(answered.json.citations.length).toBeGreaterThan(0);
  });

  it('shows agent memory under state in the stats of ai-agents, not as a cache category', async () => {
    const stats = await agents('GET', '/api/v1/cache/stats', { headers: bearer(stack.token) });
    expect(stats.status).toBe(200);
    expect(stats.json.service_stats.categories).toEqual({});
    expect(stats.json.state.agent_memory).toMatchObject({ ttl: 2_592_000, sliding: true });
    expect(stats.json.state.agent_memory.keys).toBeGreaterThanOrEqual(2);
    expect(stats.json.state.agents).toBeGreaterThanOrEqual(3);
  });

  it('serves no search answer from before a reset of the state Redis', async () => {
    const query = { query: 'least recently used eviction' };
    expect((await proxy('POST', '/api/v1/search', { body: query })).headers.get('x-cache')).toBe('miss');
    const hit = await proxy('POST', '/api/v1/search', { body: query });
    expect(hit.headers.get('x-cache')).toBe('hit');
    expect(hit.json.results.map((r: { documentId: string }) => r.documentId)).toContain('c-eviction');

    // The state Redis loses its data: every state key of the proxy goes, the cache stays.
    const stateKeys = await scanKeys(db1, 'state:retrieval-proxy:*');
    expect(stateKeys.length).toBeGreaterThan(0);
    await db1.del(...stateKeys);
    const other = await proxy('POST', '/api/v1/documents', { body: { id: 'c-lru', title: 'LRU', text: 'Least recently used eviction in caches.' } });
    expect(other.status, other.text).toBe(201);
    expect(other.json.corpusVersion).toBe(1);

    const after = await proxy('POST', '/api/v1/search', { body: query });
    expect(after.status).toBe(200);
    expect(after.headers.get('x-cache')).toBe('miss');
    expect(after.json.results.map((r: { documentId: string }) => r.documentId)).toEqual(['c-lru']);
  });
});

describe('retrieval-proxy and multimodal-worker, as real processes', () => {
  it("the worker answers each embeddings request of the contract with an answer of the contract", async () => {
    const requests: EmbeddingsRequest[] = [
      { input: ['append only file', 'eviction'], encoding_format: 'base64' },
      { input: 'one text', encoding_format: 'float' },
      { input: ['no format given'] },
    ];
    for (const body of requests) {
      expect(Value.Check(EmbeddingsRequest, body)).toBe(true);
      const res = await worker('POST', '/api/v1/embeddings', { body });
      expect(res.status, res.text).toBe(200);
      expect(Value.Check(EmbeddingsResponse, res.json), JSON.stringify([...Value.Errors(EmbeddingsResponse, res.json)][0])).toBe(true);
      const inputs = typeof body.input === 'string' ? [body.input] : body.input;
      expect(res.json.data.map((d: { index: number }) => d.index)).toEqual(inputs.map((_, i) => i));
      const embedding = res.json.data[0].embedding;
      expect(typeof embedding).toBe(body.encoding_format === 'base64' ? 'string' : 'object');
    }
  });

  it("declares the contract's request and answer in the worker's OpenAPI document", async () => {
    const doc = (await worker('GET', '/docs/json')).json;
    const op = doc.paths['/api/v1/embeddings'].post;
    const body = op.requestBody.content['application/json'].schema;
    for (const name of Object.keys(EmbeddingsRequest.properties)) expect(body.properties, name).toHaveProperty(name);
    const answer = op.responses['200'].content['application/json'].schema;
    for (const name of EmbeddingsResponse.required) expect(answer.required).toContain(name);
    for (const name of Object.keys(EmbeddingsResponse.properties.data.items.properties)) {
      expect(answer.properties.data.items.properties, name).toHaveProperty(name);
    }
  });
});
