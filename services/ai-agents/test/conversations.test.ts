import { describe, expect, it } from 'vitest';
import { build, deadUrl, testConfig, UNKNOWN_ID, useFixture } from './helpers.js';

const DB = 4;
const f = useFixture(DB);

async function newAgent(settings?: Record<string, unknown>) {
  const res = await f.app.inject({ method: 'POST', url: '/api/v1/agents', payload: { name: 'Docs bot', instructions: 'Answer from the docs.', ...(settings ? { settings } : {}) } });
  expect(res.statusCode).toBe(201);
  return res.json();
}

async function newConversation(agentId: string, payload?: Record<string, unknown>) {
  const res = await f.app.inject({ method: 'POST', url: `/api/v1/agents/${agentId}/conversations`, ...(payload ? { payload } : {}) });
  expect(res.statusCode).toBe(201);
  return res.json();
}

function send(conversationId: string, content: string, headers: Record<string, string> = {}) {
  return f.app.inject({ method: 'POST', url: `/api/v1/conversations/${conversationId}/messages`, payload: { content }, headers });
}

describe('conversations', () => {
  it('creates, lists, reads and deletes conversations', async () => {
    const agent = await newAgent();
    const a = await newConversation(agent.id, { title: 'Persistence' });
    const b = await newConversation(agent.id);
    expect(a).toMatchObject({ agentId: agent.id, title: 'Persistence' });
    expect(b.title).toBeNull();

    const list = await f.app.inject({ method: 'GET', url: `/api/v1/agents/${agent.id}/conversations` });
    expect(list.statusCode).toBe(200);
    expect(list.json()).toMatchObject({ total: 2, items: [a, b] });

    const one = await f.app.inject({ method: 'GET', url: `/api/v1/conversations/${a.id}` });
    expect(one.json()).toEqual({ ...a, messageCount: 0 });

    const del = await f.app.inject({ method: 'DELETE', url: `/api/v1/conversations/${a.id}` });
    expect(del.statusCode).toBe(204);
    expect((await f.app.inject({ method: 'GET', url: `/api/v1/conversations/${a.id}` })).statusCode).toBe(404);
    expect((await f.app.inject({ method: 'DELETE', url: `/api/v1/conversations/${a.id}` })).statusCode).toBe(404);
    expect((await f.app.inject({ method: 'GET', url: `/api/v1/agents/${agent.id}/conversations` })).json().items).toEqual([b]);
  });

  it('deletes all conversations of an agent and says how many', async () => {
    const agent = await newAgent();
    const c1 = await newConversation(agent.id);
    await newConversation(agent.id);
    expect((await send(c1.id, 'hello')).statusCode).toBe(201);
    const res = await f.app.inject({ method: 'DELETE', url: `/api/v1/agents/${agent.id}/conversations` });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ deleted: 2 });
    expect(await f.raw.exists(`state:ai-agents:conversation:${c1.id}:messages`)).toBe(0);
    expect((await f.app.inject({ method: 'GET', url: `/api/v1/agents/${agent.id}/conversations` })).json().total).toBe(0);
    expect((await f.app.inject({ method: 'GET', url: `/api/v1/agents/${agent.id}` })).statusCode).toBe(200);
  });

  it('answers 404 for conversations of an unknown agent', async () => {
    for (const [method, url] of [
      ['POST', `/api/v1/agents/${UNKNOWN_ID}/conversations`],
      ['GET', `/api/v1/agents/${UNKNOWN_ID}/conversations`],
      ['DELETE', `/api/v1/agents/${UNKNOWN_ID}/conversations`],
      ['GET', `/api/v1/conversations/${UNKNOWN_ID}/messages`],
    ] as const) {
      const res = await f.app.inject({ method, url, ...(method === 'POST' ? { payload: {} } : {}) });
      expect(res.statusCode, `${method} ${url}`).toBe(404);
    }
    expect((await send(UNKNOWN_ID, 'hi')).statusCode).toBe(404);
  });
});

describe('messages', () => {
  it('answers from the proxy context and cites the document', async () => {
    const agent = await newAgent({ contextLimit: 2, maxContextChars: 1500, filters: { lang: 'en' } });
    const conv = await newConversation(agent.id);
    const res = await send(conv.id, 'How does AOF persistence log write operations?', { 'x-request-id': 'req-abc-123' });
    expect(res.statusCode).toBe(201);
    const body = res.json();
    expect(body.provider).toBe('builtin-extractive');
    expect(body.conversationId).toBe(conv.id);
    expect(body.userMessage).toMatchObject({ role: 'user', content: 'How does AOF persistence log write operations?' });
    expect(body.reply.role).toBe('assistant');
    expect(body.reply.content).toContain('append only file (AOF) logs every write operation');
    expect(body.reply.content).toContain('[1]');
    expect(body.reply.content).toMatch(/built-in responder/i);
    expect(body.reply.content).toMatch(/no language model/i);
    expect(body.citations.map((c: { documentId: string }) => c.documentId)).toContain('doc-persistence');
    expect(body.citations[0]).toMatchObject({ id: 1, documentId: 'doc-persistence', title: 'Redis persistence', chunkIndex: 0, source: 'docs/doc-persistence.md' });
    expect(body.reply.citations).toEqual(body.citations);

    const call = f.proxy.calls.at(-1)!;
    expect(call.body).toEqual({ query: 'How does AOF persistence log write operations?', limit: 2, maxChars: 1500, filters: { lang: 'en' } });
    expect(call.requestId).toBe('req-abc-123');

    const history = (await f.app.inject({ method: 'GET', url: `/api/v1/conversations/${conv.id}/messages` })).json();
    expect(history.items.map((m: { role: string }) => m.role)).toEqual(['user', 'assistant']);
    expect(history.items[1]).toEqual(body.reply);
    expect(history.nextCursor).toBeNull();
  });

  it("asks the proxy for the agent's ranking: hybrid as set (true or false), and nothing when unset (the proxy's default)", async () => {
    for (const hybrid of [true, false, undefined]) {
      const agent = await newAgent(hybrid === undefined ? {} : { hybrid });
      expect(agent.settings.hybrid).toBe(hybrid);
      const conv = await newConversation(agent.id);
      expect((await send(conv.id, 'Where is the AOF kept?')).statusCode).toBe(201);
      const body = f.proxy.calls.at(-1)!.body;
      expect(body.hybrid).toBe(hybrid);
      expect('hybrid' in body).toBe(hybrid !== undefined);
    }
    const agent = await newAgent({ hybrid: true });
    const patched = await f.app.inject({ method: 'PATCH', url: `/api/v1/agents/${agent.id}`, payload: { settings: { hybrid: false } } });
    expect(patched.json().settings.hybrid).toBe(false);
    const bad = await f.app.inject({ method: 'PATCH', url: `/api/v1/agents/${agent.id}`, payload: { settings: { hybrid: 'yes' } } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toMatch(/hybrid/);
  });

  it('says it found nothing when the context is empty', async () => {
    const agent = await newAgent();
    const conv = await newConversation(agent.id);
    const res = await send(conv.id, 'unrelated gibberish question');
    expect(res.statusCode).toBe(201);
    expect(res.json().reply.content).toMatch(/found nothing relevant/i);
    expect(res.json().citations).toEqual([]);
  });

  it('pages history newest-last with a cursor', async () => {
    const agent = await newAgent();
    const conv = await newConversation(agent.id);
    for (let i = 1; i <= 3; i++) expect((await send(conv.id, `question ${i} about eviction`)).statusCode).toBe(201);
    // 6 messages: q1 a1 q2 a2 q3 a3
    const p1 = (await f.app.inject({ method: 'GET', url: `/api/v1/conversations/${conv.id}/messages?limit=4` })).json();
    expect(p1.total).toBe(6);
    expect(p1.items.map((m: { content: string; role: string }) => (m.role === 'user' ? m.content : 'a'))).toEqual(['question 2 about eviction', 'a', 'question 3 about eviction', 'a']);
    expect(p1.nextCursor).not.toBeNull();
    const p2 = (await f.app.inject({ method: 'GET', url: `/api/v1/conversations/${conv.id}/messages?limit=4&before=${p1.nextCursor}` })).json();
    expect(p2.items.map((m: { content: string; role: string }) => (m.role === 'user' ? m.content : 'a'))).toEqual(['question 1 about eviction', 'a']);
    expect(p2.nextCursor).toBeNull();
    expect((await f.app.inject({ method: 'GET', url: `/api/v1/conversations/${conv.id}` })).json().messageCount).toBe(6);
  });

  describe('malformed input is a 4xx and keeps the history', () => {
    it.each([
      ['missing content', {}],
      ['empty content', { content: '' }],
      ['content too long', { content: 'x'.repeat(16001) }],
      ['content of the wrong type', { content: ['a'] }],
      ['unknown field', { content: 'hi', role: 'system' }],
      ['blank content', { content: '   ' }],
    ])('POST messages rejects %s', async (_label, payload) => {
      const agent = await newAgent();
      const conv = await newConversation(agent.id);
      expect((await send(conv.id, 'keep me')).statusCode).toBe(201);
      const res = await f.app.inject({ method: 'POST', url: `/api/v1/conversations/${conv.id}/messages`, payload });
      expect(res.statusCode).toBe(400);
      expect(res.json().message).toMatch(/content|unknown properties: role/i);
      const history = (await f.app.inject({ method: 'GET', url: `/api/v1/conversations/${conv.id}/messages` })).json();
      expect(history.total).toBe(2);
      expect(history.items[0].content).toBe('keep me');
    });

    it.each(['limit=0', 'limit=201', 'limit=x', 'before=-1', 'before=abc', 'extra=1'])('GET messages rejects %s', async (qs) => {
      const agent = await newAgent();
      const conv = await newConversation(agent.id);
      const res = await f.app.inject({ method: 'GET', url: `/api/v1/conversations/${conv.id}/messages?${qs}` });
      expect(res.statusCode).toBe(400);
      expect(res.json().code).toBe('VALIDATION_ERROR');
    });

    it.each([
      ['POST', '/api/v1/agents/nope/conversations'],
      ['GET', '/api/v1/agents/nope/conversations'],
      ['DELETE', '/api/v1/agents/nope/conversations'],
      ['GET', '/api/v1/conversations/nope'],
      ['DELETE', '/api/v1/conversations/nope'],
      ['GET', '/api/v1/conversations/nope/messages'],
      ['POST', '/api/v1/conversations/nope/messages'],
    ] as const)('%s %s with a bad id is a 400', async (method, url) => {
      const res = await f.app.inject({ method, url, ...(method === 'POST' ? { payload: { content: 'hi' } } : {}) });
      expect(res.statusCode).toBe(400);
      expect(res.json().message).toMatch(/uuid/);
    });

    it.each([
      ['title too long', { title: 't'.repeat(201) }],
      ['empty title', { title: '' }],
      ['title of the wrong type', { title: 5 }],
      ['unknown field', { title: 'a', color: 'red' }],
    ])('POST conversations rejects %s', async (_label, payload) => {
      const agent = await newAgent();
      const res = await f.app.inject({ method: 'POST', url: `/api/v1/agents/${agent.id}/conversations`, payload });
      expect(res.statusCode).toBe(400);
      expect(res.json().message).toMatch(/title|unknown properties: color/);
      expect((await f.app.inject({ method: 'GET', url: `/api/v1/agents/${agent.id}/conversations` })).json().total).toBe(0);
    });

    it('rejects a JSON null body instead of creating a conversation (regression: null was read as {})', async () => {
      const agent = await newAgent();
      const res = await f.app.inject({ method: 'POST', url: `/api/v1/agents/${agent.id}/conversations`, headers: { 'content-type': 'application/json' }, payload: 'null' });
      expect(res.statusCode).toBe(400);
      expect((await f.app.inject({ method: 'GET', url: `/api/v1/agents/${agent.id}/conversations` })).json().total).toBe(0);
    });

    it('rejects a deeply nested body with a 400 (regression: cloning it overflowed the stack, a 500)', async () => {
      const agent = await newAgent();
      const deep = '{"title":'.repeat(5000) + '"x"' + '}'.repeat(5000);
      const res = await f.app.inject({ method: 'POST', url: `/api/v1/agents/${agent.id}/conversations`, headers: { 'content-type': 'application/json' }, payload: deep });
      expect(res.statusCode).toBe(400);
    });
  });
});

describe('retrieval-proxy down', () => {
  it('answers 503 PEER_UNAVAILABLE and keeps the user message', async () => {
    const url = await deadUrl();
    const down = await build(testConfig(f.redis.url, DB, { RETRIEVAL_PROXY_URL: url, PEER_RETRIES: '1' }));
    try {
      const agent = (await down.inject({ method: 'POST', url: '/api/v1/agents', payload: { name: 'Offline' } })).json();
      const conv = (await down.inject({ method: 'POST', url: `/api/v1/agents/${agent.id}/conversations`, payload: {} })).json();
      const res = await down.inject({ method: 'POST', url: `/api/v1/conversations/${conv.id}/messages`, payload: { content: 'Is my question kept?' } });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toMatchObject({ statusCode: 503, code: 'PEER_UNAVAILABLE' });
      expect(res.json().message).toContain('retrieval-proxy');

      const history = (await down.inject({ method: 'GET', url: `/api/v1/conversations/${conv.id}/messages` })).json();
      expect(history.items).toHaveLength(1);
      expect(history.items[0]).toMatchObject({ role: 'user', content: 'Is my question kept?' });
      // No exchange happened, so nothing went to memory.
      expect((await down.inject({ method: 'GET', url: `/api/v1/agents/${agent.id}/memory` })).json().items).toEqual([]);

      const ready = await down.inject({ method: 'GET', url: '/ready' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json().status).toBe('not_ready');
      expect(ready.json().checks['retrieval-proxy'].ok).toBe(false);
    } finally {
      await down.close();
    }
  });

  it('is ready when redis, state redis and the proxy answer', async () => {
    const res = await f.app.inject({ method: 'GET', url: '/ready' });
    expect(res.statusCode).toBe(200);
    expect(res.json().status).toBe('ready');
    expect(Object.keys(res.json().checks).sort()).toEqual(['auth', 'redis', 'retrieval-proxy', 'state']);
  });
});

describe('cache admin never touches state', () => {
  it('a cache clear leaves agents and conversations in place', async () => {
    const agent = await newAgent();
    const conv = await newConversation(agent.id);
    expect((await send(conv.id, 'What does noeviction do?')).statusCode).toBe(201);
    // No admin token configured: the mutating admin route is closed.
    expect((await f.app.inject({ method: 'DELETE', url: '/api/v1/cache/clear' })).statusCode).toBe(401);
    const stats = await f.app.inject({ method: 'GET', url: '/api/v1/cache/stats' });
    expect(stats.statusCode).toBe(200);
    expect(stats.json().state.agent_memory.keys).toBeGreaterThanOrEqual(1);
    expect(await f.raw.exists(`state:ai-agents:conversation:${conv.id}`)).toBe(1);
  });
});
