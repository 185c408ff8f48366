import { describe, expect, it } from 'vitest';
import { UNKNOWN_ID, useFixture } from './helpers.js';

const DB = 3;
const f = useFixture(DB);

async function createAgent(body: Record<string, unknown> = { name: 'Helper', instructions: 'Be brief.' }) {
  const res = await f.app.inject({ method: 'POST', url: '/api/v1/agents', payload: body });
  expect(res.statusCode).toBe(201);
  return res.json();
}

describe('agents', () => {
  it('creates an agent with default settings and reads it back', async () => {
    const agent = await createAgent();
    expect(agent.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(agent).toMatchObject({
      name: 'Helper',
      instructions: 'Be brief.',
      settings: { temperature: 0.2, maxContextChars: 4000, contextLimit: 5, memoryMaxItems: 50 },
    });
    expect(Date.parse(agent.createdAt)).not.toBeNaN();

    const res = await f.app.inject({ method: 'GET', url: `/api/v1/agents/${agent.id}` });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual(agent);
  });

  it('keeps given settings, filters included', async () => {
    const settings = { temperature: 1.5, maxContextChars: 200, contextLimit: 3, memoryMaxItems: 7, filters: { lang: 'en', year: [2023, 2024], public: true } };
    const agent = await createAgent({ name: 'Filtered', instructions: '', settings });
    expect(agent.settings).toEqual(settings);
  });

  it('stores agents as state keys, never under the cache prefix', async () => {
    const agent = await createAgent();
    expect(await f.raw.exists(`state:ai-agents:agent:${agent.id}`)).toBe(1);
    expect(await f.raw.ttl(`state:ai-agents:agent:${agent.id}`)).toBe(-1);
    expect(await f.raw.zscore('state:ai-agents:agents', agent.id)).not.toBeNull();
  });

  it('lists agents with limit and offset', async () => {
    const all = await f.app.inject({ method: 'GET', url: '/api/v1/agents?limit=100' });
    expect(all.statusCode).toBe(200);
    const { items, total } = all.json();
    expect(total).toBeGreaterThanOrEqual(3);
    expect(items).toHaveLength(total);

    const page = await f.app.inject({ method: 'GET', url: '/api/v1/agents?limit=1&offset=1' });
    expect(page.json()).toMatchObject({ limit: 1, offset: 1, total });
    expect(page.json().items).toEqual([items[1]]);
  });

  it('deletes an agent together with its conversations and memory', async () => {
    const agent = await createAgent();
    const conv = (await f.app.inject({ method: 'POST', url: `/api/v1/agents/${agent.id}/conversations`, payload: { title: 't' } })).json();
    const msg = await f.app.inject({ method: 'POST', url: `/api/v1/conversations/${conv.id}/messages`, payload: { content: 'What is AOF persistence?' } });
    expect(msg.statusCode).toBe(201);
    expect(await f.raw.exists(`state:ai-agents:memory:${agent.id}`)).toBe(1);

    const del = await f.app.inject({ method: 'DELETE', url: `/api/v1/agents/${agent.id}` });
    expect(del.statusCode).toBe(204);
    expect(del.body).toBe('');

    expect((await f.app.inject({ method: 'GET', url: `/api/v1/agents/${agent.id}` })).statusCode).toBe(404);
    expect((await f.app.inject({ method: 'GET', url: `/api/v1/conversations/${conv.id}` })).statusCode).toBe(404);
    expect(
      await f.raw.exists(
        `state:ai-agents:memory:${agent.id}`,
        `state:ai-agents:conversation:${conv.id}`,
        `state:ai-agents:conversation:${conv.id}:messages`,
        `state:ai-agents:agent:${agent.id}:conversations`,
      ),
    ).toBe(0);
    expect((await f.app.inject({ method: 'DELETE', url: `/api/v1/agents/${agent.id}` })).statusCode).toBe(404);
  });

  it('answers 404 with the error shape for an unknown agent', async () => {
    const res = await f.app.inject({ method: 'GET', url: `/api/v1/agents/${UNKNOWN_ID}` });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ statusCode: 404, code: 'NOT_FOUND', error: 'Not Found' });
    expect(res.json().message).toContain(UNKNOWN_ID);
  });
});

describe('agents: malformed input is a 4xx and changes nothing', () => {
  it.each([
    ['missing name', { instructions: 'x' }, 'name'],
    ['empty name', { name: '' }, 'name'],
    ['name too long', { name: 'n'.repeat(101) }, 'name'],
    ['blank name', { name: '   ' }, 'blank'],
    ['name of the wrong type', { name: 42 }, 'name'],
    ['instructions too long', { name: 'a', instructions: 'i'.repeat(8001) }, 'instructions'],
    ['temperature above 2', { name: 'a', settings: { temperature: 2.5 } }, 'temperature'],
    ['temperature below 0', { name: 'a', settings: { temperature: -0.1 } }, 'temperature'],
    ['maxContextChars too small', { name: 'a', settings: { maxContextChars: 199 } }, 'maxContextChars'],
    ['maxContextChars too big', { name: 'a', settings: { maxContextChars: 20001 } }, 'maxContextChars'],
    ['contextLimit 0', { name: 'a', settings: { contextLimit: 0 } }, 'contextLimit'],
    ['contextLimit 21', { name: 'a', settings: { contextLimit: 21 } }, 'contextLimit'],
    ['memoryMaxItems 501', { name: 'a', settings: { memoryMaxItems: 501 } }, 'memoryMaxItems'],
    ['memoryMaxItems fractional', { name: 'a', settings: { memoryMaxItems: 1.5 } }, 'memoryMaxItems'],
    ['unknown setting', { name: 'a', settings: { topK: 3 } }, 'body/settings has unknown properties: topK'],
    ['unknown field', { name: 'a', owner: 'me' }, 'body has unknown properties: owner'],
    ['filters with an object value', { name: 'a', settings: { filters: { a: { b: 1 } } } }, 'filters'],
    ['a filter name with spaces', { name: 'a', settings: { filters: { 'bad key': 'x' } } }, 'filters'],
    ['too many filters', { name: 'a', settings: { filters: Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`k${i}`, i])) } }, 'filters'],
    ['too many filter values', { name: 'a', settings: { filters: { a: Array.from({ length: 51 }, (_, i) => i) } } }, 'filters'],
  ])('POST /api/v1/agents rejects %s', async (_label, payload, hint) => {
    const before = (await f.app.inject({ method: 'GET', url: '/api/v1/agents?limit=100' })).json().total;
    const res = await f.app.inject({ method: 'POST', url: '/api/v1/agents', payload });
    expect(res.statusCode).toBe(400);
    expect(res.json().code).toMatch(/VALIDATION_ERROR|BAD_REQUEST/);
    expect(res.json().message.toLowerCase()).toContain(hint.toLowerCase());
    expect((await f.app.inject({ method: 'GET', url: '/api/v1/agents?limit=100' })).json().total).toBe(before);
  });

  it('rejects a body that is not JSON', async () => {
    const res = await f.app.inject({ method: 'POST', url: '/api/v1/agents', headers: { 'content-type': 'application/json' }, payload: '{"name":' });
    expect(res.statusCode).toBe(400);
  });

  it.each(['limit=0', 'limit=101', 'limit=abc', 'offset=-1'])('GET /api/v1/agents rejects %s', async (qs) => {
    const res = await f.app.inject({ method: 'GET', url: `/api/v1/agents?${qs}` });
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toMatch(/limit|offset/);
  });

  it.each([
    ['GET', '/api/v1/agents/not-a-uuid'],
    ['DELETE', '/api/v1/agents/not-a-uuid'],
    ['GET', '/api/v1/agents/1234'],
  ] as const)('%s %s with a bad id is a 400, and agents survive', async (method, url) => {
    const agent = await createAgent();
    const res = await f.app.inject({ method, url });
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toContain('uuid');
    expect((await f.app.inject({ method: 'GET', url: `/api/v1/agents/${agent.id}` })).statusCode).toBe(200);
  });
});
