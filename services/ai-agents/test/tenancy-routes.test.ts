import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { UNKNOWN_ID, useFixture } from './helpers.js';

/**
 * Tenancy through the HTTP routes with authentication on: two users of two tenants, each with an API key. Every
 * route answers another tenant's id exactly as an id that does not exist, and lists hold the caller's own only.
 */
const DB = 14;
const ADMIN = 'tenancy-routes-admin-token';
const f = useFixture(DB, {
  env: { AUTH_MODE: 'on', CACHE_ADMIN_TOKEN: ADMIN, REDIS_DB_AUTH: '13' },
  // Whom each context call acts for, made visible to the fake proxy.
  overrides: { proxyCredentials: ({ tenant, principal }) => ({ 'x-acting-tenant': tenant, 'x-acting-user': principal?.userId ?? '' }) },
});

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';
interface Caller {
  tenant: string;
  userId: string;
  call(method: Method, url: string, payload?: object): Promise<Awaited<ReturnType<typeof f.app.inject>>>;
}

async function caller(tenant: string): Promise<Caller> {
  const admin = { authorization: `Bearer ${ADMIN}` };
  const user = await f.app.inject({
    method: 'POST',
    url: '/api/v1/auth/users',
    headers: admin,
    payload: { username: `u-${tenant}-${randomUUID().slice(0, 8)}`, password: 'correct horse battery', tenant, role: 'write' },
  });
  expect(user.statusCode, user.body).toBe(201);
  const key = await f.app.inject({ method: 'POST', url: '/api/v1/auth/keys', headers: admin, payload: { name: 'k', scopes: ['read', 'write'], userId: user.json().id } });
  expect(key.statusCode, key.body).toBe(201);
  const headers = { authorization: `Bearer ${key.json().key}` };
  return {
    tenant,
    userId: user.json().id,
    call: (method, url, payload) => f.app.inject({ method, url, headers, ...(payload ? { payload } : {}) }),
  };
}

let a: Caller;
let b: Caller;
beforeAll(async () => {
  a = await caller('acme');
  b = await caller('globex');
});

async function agentWithHistory(c: Caller) {
  const agent = (await c.call('POST', '/api/v1/agents', { name: `Agent of ${c.tenant}` })).json();
  const conversation = (await c.call('POST', `/api/v1/agents/${agent.id}/conversations`, { title: 't' })).json();
  const sent = await c.call('POST', `/api/v1/conversations/${conversation.id}/messages`, { content: 'What is AOF persistence?' });
  expect(sent.statusCode, sent.body).toBe(201);
  return { agent, conversation };
}

describe('tenancy through the routes', () => {
  it('needs a credential: without one nothing is read', async () => {
    const res = await f.app.inject({ method: 'GET', url: '/api/v1/agents' });
    expect(res.statusCode).toBe(401);
  });

  it("answers another tenant's ids on every route exactly as ids that do not exist, and changes nothing", async () => {
    const { agent, conversation } = await agentWithHistory(a);
    const routes: Array<[Method, string, object?]> = [
      ['GET', '/api/v1/agents/:agent'],
      ['PATCH', '/api/v1/agents/:agent', { name: 'Taken over' }],
      ['DELETE', '/api/v1/agents/:agent'],
      ['GET', '/api/v1/agents/:agent/memory'],
      ['DELETE', '/api/v1/agents/:agent/memory'],
      ['POST', '/api/v1/agents/:agent/conversations', { title: 'mine now' }],
      ['GET', '/api/v1/agents/:agent/conversations'],
      ['DELETE', '/api/v1/agents/:agent/conversations'],
      ['GET', '/api/v1/conversations/:conversation'],
      ['DELETE', '/api/v1/conversations/:conversation'],
      ['GET', '/api/v1/conversations/:conversation/messages'],
      ['POST', '/api/v1/conversations/:conversation/messages', { content: 'What is RDB?' }],
    ];
    const calls = f.proxy.calls.length;
    for (const [method, path, payload] of routes) {
      const url = (agentId: string, conversationId: string) => path.replace(':agent', agentId).replace(':conversation', conversationId);
      const theirs = await b.call(method, url(agent.id, conversation.id), payload);
      const unknown = await b.call(method, url(UNKNOWN_ID, UNKNOWN_ID), payload);
      expect(unknown.statusCode, `${method} ${path}`).toBe(404);
      expect(theirs.statusCode, `${method} ${path}`).toBe(404);
      expect(theirs.json(), `${method} ${path}`).toEqual(JSON.parse(unknown.body.replaceAll(UNKNOWN_ID, path.includes(':agent') ? agent.id : conversation.id)));
    }
    // The refused message never reached retrieval-proxy.
    expect(f.proxy.calls.length).toBe(calls);

    // A's records are as they were.
    expect((await a.call('GET', `/api/v1/agents/${agent.id}`)).json()).toEqual(agent);
    expect((await a.call('GET', `/api/v1/agents/${agent.id}/memory`)).json().items).toHaveLength(2);
    expect((await a.call('GET', `/api/v1/agents/${agent.id}/conversations`)).json()).toMatchObject({ total: 1, items: [conversation] });
    expect((await a.call('GET', `/api/v1/conversations/${conversation.id}/messages`)).json().total).toBe(2);
  });

  it('lists and totals only the caller’s own agents and conversations', async () => {
    const before = { a: (await a.call('GET', '/api/v1/agents?limit=100')).json().total, b: (await b.call('GET', '/api/v1/agents?limit=100')).json().total };
    const mine = [];
    for (let i = 0; i < 3; i++) mine.push((await a.call('POST', '/api/v1/agents', { name: `a${i}` })).json());
    const theirs = (await b.call('POST', '/api/v1/agents', { name: 'b' })).json();

    const listA = (await a.call('GET', '/api/v1/agents?limit=100')).json();
    const listB = (await b.call('GET', '/api/v1/agents?limit=100')).json();
    expect(listA.total).toBe(before.a + 3);
    expect(listB.total).toBe(before.b + 1);
    expect(listA.items.map((x: { id: string }) => x.id)).not.toContain(theirs.id);
    expect(listB.items.map((x: { id: string }) => x.id)).toEqual(expect.arrayContaining([theirs.id]));
    for (const m of mine) expect(listB.items.map((x: { id: string }) => x.id)).not.toContain(m.id);
    expect((await a.call('GET', `/api/v1/agents?limit=1&offset=${listA.total - 1}`)).json()).toMatchObject({ total: listA.total, items: [listA.items.at(-1)] });
  });

  it('each context call carries whom it acts for: the tenant and the user of the request', async () => {
    const { conversation } = await agentWithHistory(b);
    const last = f.proxy.calls.at(-1)!;
    expect(last.body.query).toBe('What is AOF persistence?');
    expect(last.headers['x-acting-tenant']).toBe(b.tenant);
    expect(last.headers['x-acting-user']).toBe(b.userId);
    expect((await b.call('GET', `/api/v1/conversations/${conversation.id}`)).json().messageCount).toBe(2);
  });
});
