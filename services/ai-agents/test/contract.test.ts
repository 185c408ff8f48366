import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { ContextRequest, QUERY_MAX_LENGTH } from '@aicache/contracts';
import { Value } from 'typebox/value';
import { queryFromMessage } from '../src/domain/retrieval.js';
import { build, testConfig, useFixture } from './helpers.js';

const DB = 6;
const f = useFixture(DB);

const createAgent = (settings?: object) => f.app.inject({ method: 'POST', url: '/api/v1/agents', payload: { name: 'Contract', ...(settings ? { settings } : {}) } });

async function conversationOf(agentId: string): Promise<string> {
  const res = await f.app.inject({ method: 'POST', url: `/api/v1/agents/${agentId}/conversations`, payload: {} });
  expect(res.statusCode).toBe(201);
  return res.json().id;
}

/** Filters retrieval-proxy refuses (its schema, from the contract). */
const REFUSED: Array<[string, object]> = [
  ['a key with ":"', { 'team:name': 'billing' }],
  ['a 100-character key', { ['k'.repeat(100)]: 'x' }],
  ['a 65-character key', { ['k'.repeat(65)]: 'x' }],
  ['an empty array', { lang: [] }],
  ['a 1,001-character value', { lang: 'x'.repeat(1001) }],
  ['51 values', { year: Array.from({ length: 51 }, (_, i) => 1970 + i) }],
  ['null', { lang: null }],
];

describe('ai-agents accepts only what retrieval-proxy accepts', () => {
  it.each(REFUSED)('refuses an agent whose filters have %s, at creation and at update (400)', async (_name, filters) => {
    const created = await createAgent({ filters });
    expect(created.statusCode, created.body).toBe(400);
    expect(created.json()).toMatchObject({ code: 'VALIDATION_ERROR', message: expect.stringContaining('filters') });

    const agent = await createAgent({ filters: { lang: 'en' } });
    expect(agent.statusCode).toBe(201);
    const id = agent.json().id;
    const updated = await f.app.inject({ method: 'PATCH', url: `/api/v1/agents/${id}`, payload: { settings: { filters } } });
    expect(updated.statusCode, updated.body).toBe(400);
    expect((await f.app.inject({ url: `/api/v1/agents/${id}` })).json().settings.filters).toEqual({ lang: 'en' });
  });

  it('sends the filters it accepted, and the proxy takes them', async () => {
    const filters = { lang: 'en', year: [2023, 2024], public: true, ['k'.repeat(64)]: 'x' };
    const agent = await createAgent({ filters });
    expect(agent.statusCode).toBe(201);
    const res = await f.app.inject({ method: 'POST', url: `/api/v1/conversations/${await conversationOf(agent.json().id)}/messages`, payload: { content: 'How does AOF work?' } });
    expect(res.statusCode, res.body).toBe(201);
    expect(f.proxy.calls.at(-1)?.body.filters).toEqual(filters);
  });

  it('turns a 16,000-character message into a query the proxy accepts, keeping its start and its end', async () => {
    const agent = (await createAgent()).json();
    const conversationId = await conversationOf(agent.id);
    const opening = 'Which persistence option logs every write?';
    const closing = 'And which eviction policy returns errors when memory is full?';
    const filler = ' Here is some log output I was given, line after line of it.'.repeat(400);
    const content = (opening + filler).slice(0, 16_000 - closing.length - 1) + ' ' + closing;
    expect(content.length).toBe(16_000);

    const res = await f.app.inject({ method: 'POST', url: `/api/v1/conversations/${conversationId}/messages`, payload: { content } });
    expect(res.statusCode, res.body).toBe(201);
    const query = f.proxy.calls.at(-1)!.body.query;
    expect(query.length).toBeLessThanOrEqual(QUERY_MAX_LENGTH);
    expect(query.startsWith(opening)).toBe(true);
    expect(query.endsWith(closing)).toBe(true);
    expect(res.json().userMessage.content).toBe(content);
    expect(res.json().citations.length).toBeGreaterThan(0);
  });

  it('refuses a message for an agent stored with filters the proxy refuses (409, with the fix), storing nothing', async () => {
    const agent = (await createAgent()).json();
    const conversationId = await conversationOf(agent.id);
    // As an agent saved before filters were checked.
    await f.raw.set(`state:ai-agents:agent:${agent.id}`, JSON.stringify({ ...agent, settings: { ...agent.settings, filters: { 'team:name': 'x' } } }));
    const calls = f.proxy.calls.length;
    const res = await f.app.inject({ method: 'POST', url: `/api/v1/conversations/${conversationId}/messages`, payload: { content: 'hello' } });
    expect(res.statusCode).toBe(409);
    expect(res.json().message).toContain(`PATCH /api/v1/agents/${agent.id}`);
    expect(f.proxy.calls.length).toBe(calls);
    expect(await f.raw.llen(`state:ai-agents:conversation:${conversationId}:messages`)).toBe(0);
    expect((await f.app.inject({ url: `/api/v1/agents/${agent.id}` })).json().settings.filters).toEqual({ 'team:name': 'x' });

    const fixed = await f.app.inject({ method: 'PATCH', url: `/api/v1/agents/${agent.id}`, payload: { settings: { filters: {} } } });
    expect(fixed.statusCode).toBe(200);
    expect(fixed.json().settings).not.toHaveProperty('filters');
    const again = await f.app.inject({ method: 'POST', url: `/api/v1/conversations/${conversationId}/messages`, payload: { content: 'hello' } });
    expect(again.statusCode, again.body).toBe(201);
  });
});

describe('PATCH /api/v1/agents/:id', () => {
  it('changes what it is given and keeps the rest', async () => {
    const agent = (await createAgent({ contextLimit: 3, filters: { lang: 'en' } })).json();
    const res = await f.app.inject({ method: 'PATCH', url: `/api/v1/agents/${agent.id}`, payload: { instructions: 'Be brief.', settings: { temperature: 1 } } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ ...agent, instructions: 'Be brief.', settings: { ...agent.settings, temperature: 1 } });
    expect((await f.app.inject({ url: `/api/v1/agents/${agent.id}` })).json()).toEqual(res.json());
  });

  it('answers 404 for an unknown agent and 400 for an empty or unknown change, without creating anything', async () => {
    const unknown = '00000000-0000-4000-8000-0000000000aa';
    expect((await f.app.inject({ method: 'PATCH', url: `/api/v1/agents/${unknown}`, payload: { name: 'x' } })).statusCode).toBe(404);
    expect(await f.raw.exists(`state:ai-agents:agent:${unknown}`)).toBe(0);
    const agent = (await createAgent()).json();
    for (const payload of [{}, { id: 'x' }, { name: '  ' }, { settings: { contextLimit: 0 } }]) {
      expect((await f.app.inject({ method: 'PATCH', url: `/api/v1/agents/${agent.id}`, payload })).statusCode, JSON.stringify(payload)).toBe(400);
    }
  });
});

describe('the context answer as the proxy sent it', () => {
  it('cites what the proxy cited under the same number, with nothing re-joined or renumbered', async () => {
    const agent = (await createAgent()).json();
    const res = await f.app.inject({
      method: 'POST',
      url: `/api/v1/conversations/${await conversationOf(agent.id)}/messages`,
      payload: { content: 'Which policy evicts the least recently used keys?' },
    });
    expect(res.statusCode).toBe(201);
    // The fake proxy sent section 2 with citation id 2 and source docs/doc-eviction.md.
    expect(res.json().citations).toEqual([{ id: 2, documentId: 'doc-eviction', title: 'Eviction policies', source: 'docs/doc-eviction.md', chunkIndex: 2 }]);
    expect(res.json().reply.content).toContain('[2]');
  });

  it('answers 502 PEER_ERROR when the proxy answers in a shape the contract does not allow', async () => {
    const old = Fastify({ logger: false });
    old.get('/health', async () => ({ status: 'ok' }));
    // The shape before the contract: sections and citations in two lists.
    old.post('/api/v1/context', async () => ({
      query: 'q',
      sections: [{ documentId: 'd', title: 't', chunkIndex: 0, text: 'x', score: 1 }],
      citations: [{ id: 1, documentId: 'd', title: 't', chunkIndex: 0 }],
      text: '[1] x',
      truncated: false,
    }));
    const url = await old.listen({ port: 0, host: '127.0.0.1' });
    const other = await build(testConfig(f.redis.url, DB, { RETRIEVAL_PROXY_URL: url }));
    try {
      const agent = (await other.inject({ method: 'POST', url: '/api/v1/agents', payload: { name: 'Old' } })).json();
      const conv = (await other.inject({ method: 'POST', url: `/api/v1/agents/${agent.id}/conversations`, payload: {} })).json();
      const res = await other.inject({ method: 'POST', url: `/api/v1/conversations/${conv.id}/messages`, payload: { content: 'hi' } });
      expect(res.statusCode).toBe(502);
      expect(res.json()).toMatchObject({ code: 'PEER_ERROR', message: expect.stringContaining('does not match the contract') });
    } finally {
      await other.close();
      await old.close();
    }
  });
});

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

describe('queryFromMessage', () => {
  it('collapses whitespace and leaves a short message whole', () => {
    expect(queryFromMessage('  What   is\n\tAOF? ')).toBe('What is AOF?');
  });

  it('never splits a surrogate pair, and every long message makes a query the contract accepts', () => {
    for (const content of ['😀'.repeat(8000), `${'a'.repeat(999)}😀${'b'.repeat(15_000)}`, 'x'.repeat(16_000), `${'word '.repeat(3199)}end`]) {
      const query = queryFromMessage(content);
      expect(query.length).toBeLessThanOrEqual(QUERY_MAX_LENGTH);
      expect(query).not.toMatch(LONE_SURROGATE);
      expect(Value.Check(ContextRequest, { query })).toBe(true);
    }
  });
});
