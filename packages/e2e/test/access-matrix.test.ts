import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, call, SERVICES, startStack, type Principal, type ServiceName, type Stack } from './stack.js';

/**
 * Who may do what, generated from the services' own OpenAPI documents: every guarded operation of the three services
 * is called with no credential, a wrong one, a revoked one, a `read` key (where the operation needs more), and tenant
 * A's credential on tenant B's resources. No 2xx where there must not be one, and no answer to A holds B's data.
 */

/* eslint-disable @typescript-eslint/no-explicit-any */
type Doc = Record<string, any>;

interface Op {
  service: ServiceName;
  method: string;
  path: string;
  scope: 'read' | 'write' | 'admin';
}

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];
let stack: Stack;
let a: Principal;
let aRead: Principal;
let b: Principal;
let revokedKey: string;
const ops: Op[] = [];
/** Tenant B's resources. */
const bIds = { document: '', agent: '', conversation: '' };
/** A word of B's document that A searches for (so A's answers echo it), and strings only B's data holds, which A never sends. */
let lure = '';
const bSecrets: string[] = [];

async function ok<T = any>(res: Promise<{ status: number; json: T; text: string }>, status = 201): Promise<T> {
  const r = await res;
  expect(r.status, r.text).toBe(status);
  return r.json;
}

beforeAll(async () => {
  stack = await startStack();
  a = await stack.principal('tenant-a');
  b = await stack.principal('tenant-b');
  // A read-only key of A's own user, and a key of A that is then revoked.
  const admin = bearer(stack.token);
  const readKey = await ok<{ key: string }>(call(stack.agents.url, 'POST', '/api/v1/auth/keys', { headers: admin, body: { name: 'ro', scopes: ['read'], userId: a.userId } }));
  aRead = { ...a, key: readKey.key };
  const doomed = await ok<{ key: string; record: { id: string } }>(call(stack.agents.url, 'POST', '/api/v1/auth/keys', { headers: admin, body: { name: 'doomed', scopes: ['write'], userId: a.userId } }));
  expect((await call(stack.agents.url, 'GET', '/api/v1/auth/me', { headers: bearer(doomed.key) })).status).toBe(200);
  expect((await call(stack.proxy.url, 'DELETE', `/api/v1/auth/keys/${doomed.record.id}`, { headers: bearer(doomed.key) })).status).toBe(204);
  revokedKey = doomed.key;

  // B's data: a document with a word nobody else has, an agent, a conversation with a message.
  lure = `zebra${randomBytes(4).toString('hex')}`;
  const secret = `okapi${randomBytes(4).toString('hex')}`;
  bSecrets.push(secret, b.username);
  const asB = bearer(b.key);
  bIds.document = `doc-${randomBytes(3).toString('hex')}`;
  await ok(call(stack.proxy.url, 'POST', '/api/v1/documents', { headers: asB, body: { id: bIds.document, title: `${secret} notes`, text: `The ${lure} migrates across the plain every spring with the ${secret}.` } }));
  bIds.agent = (await ok<{ id: string }>(call(stack.agents.url, 'POST', '/api/v1/agents', { headers: asB, body: { name: `${secret}-agent`, instructions: secret } }))).id;
  bIds.conversation = (await ok<{ id: string }>(call(stack.agents.url, 'POST', `/api/v1/agents/${bIds.agent}/conversations`, { headers: asB, body: { title: secret } }))).id;
  await ok(call(stack.agents.url, 'POST', `/api/v1/conversations/${bIds.conversation}/messages`, { headers: asB, body: { content: `where does the ${lure} go, ${secret}?` } }));

  for (const service of SERVICES) {
    const doc = (await call<Doc>(stack.byName[service].url, 'GET', '/docs/json', { auth: false })).json;
    for (const [path, item] of Object.entries(doc.paths as Doc)) {
      for (const method of METHODS) {
        const op = item[method];
        if (!op?.security?.length) continue;
        ops.push({ service, method: method.toUpperCase(), path, scope: op['x-scope'] });
      }
    }
  }
}, 180_000);

afterAll(async () => {
  await stack?.stop();
});

/** The path with B's ids where the operation names a resource, harmless values elsewhere. */
function pathFor(op: Op): string {
  return op.path.replace(/\{([^}]+)\}/g, (_, name: string) => {
    if (op.path.startsWith('/api/v1/documents')) return bIds.document;
    if (op.path.startsWith('/api/v1/agents')) return bIds.agent;
    if (op.path.startsWith('/api/v1/conversations')) return bIds.conversation;
    if (name === 'userId') return b.userId;
    if (name === 'keyId') return b.keyId;
    if (name === 'fileHash') return 'a'.repeat(64);
    if (name === 'pattern') return '*';
    if (name === 'owner') return 'local';
    return 'local-hash-384';
  });
}

/** A body the operation accepts, so that its answer comes from the handler and not from validation. */
function bodyFor(op: Op): unknown {
  const key = `${op.method} ${op.path}`;
  const bodies: Record<string, unknown> = {
    'PATCH /api/v1/agents/{id}': { name: 'renamed by A' },
    'POST /api/v1/agents/{agentId}/conversations': undefined,
    'POST /api/v1/conversations/{id}/messages': { content: 'hello' },
    'POST /api/v1/search': { query: lure },
    'POST /api/v1/context': { query: lure },
  };
  return key in bodies ? bodies[key] : op.method === 'GET' || op.method === 'DELETE' ? undefined : {};
}

describe('the access matrix, from the OpenAPI documents', () => {
  it('covers the guarded operations of all three services', () => {
    expect(ops.length).toBeGreaterThan(30);
    for (const s of SERVICES) expect(ops.filter((o) => o.service === s).length, s).toBeGreaterThan(8);
    expect(ops.filter((o) => o.scope === 'admin').length).toBeGreaterThan(10);
  });

  it('no credential, a wrong one and a revoked one: 401 on every operation', async () => {
    const wrong: string[] = [];
    for (const op of ops) {
      for (const [label, headers] of [
        ['none', {}],
        ['wrong', bearer(`aik_${randomBytes(32).toString('base64url')}`)],
        ['revoked', bearer(revokedKey)],
        ['garbage', { authorization: 'Basic dXNlcjpwYXNz' }],
      ] as const) {
        const res = await call(stack.byName[op.service].url, op.method, pathFor(op), { headers, auth: label === 'none' || label === 'garbage' ? false : undefined, body: bodyFor(op) });
        if (res.status !== 401) wrong.push(`${label} ${op.service} ${op.method} ${op.path}: ${res.status}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it("a read key: 403 on every operation that needs write or admin, and never a 2xx there", async () => {
    const wrong: string[] = [];
    for (const op of ops.filter((o) => o.scope !== 'read')) {
      const res = await call(stack.byName[op.service].url, op.method, pathFor(op), { headers: bearer(aRead.key), body: bodyFor(op) });
      if (res.status !== 403) wrong.push(`${op.service} ${op.method} ${op.path}: ${res.status} ${res.text.slice(0, 120)}`);
    }
    expect(wrong).toEqual([]);
  });

  it("tenant A's write key on tenant B's resources: 404 like an unknown id (403 on admin operations), no 2xx, none of B's data in any answer", async () => {
    const wrong: string[] = [];
    const answers: string[] = [];
    for (const op of ops) {
      const names = /\{/.test(op.path);
      const res = await call(stack.byName[op.service].url, op.method, pathFor(op), { headers: bearer(a.key), body: bodyFor(op) });
      answers.push(res.text);
      if (op.scope === 'admin') {
        if (res.status !== 403) wrong.push(`admin ${op.service} ${op.method} ${op.path}: ${res.status}`);
      } else if (names && !op.path.startsWith('/api/v1/models')) {
        if (res.status !== 404) wrong.push(`B's resource ${op.service} ${op.method} ${op.path}: ${res.status} ${res.text.slice(0, 120)}`);
      } else if (res.status === 401 || res.status >= 500) {
        // Unparameterised operations (lists, search, create) may answer A; what they answer is checked below.
        wrong.push(`${op.service} ${op.method} ${op.path}: ${res.status} ${res.text.slice(0, 120)}`);
      }
    }
    expect(wrong).toEqual([]);
    const leaked = bSecrets.filter((m) => answers.some((text) => text.includes(m)));
    expect(leaked, "B's data in an answer to A").toEqual([]);
    // The lure found nothing for A: no answer names B's document.
    expect(answers.filter((text) => text.includes(`"${bIds.document}"`) && !text.includes('not found'))).toEqual([]);
  });

  it("B's resources are untouched, and B still reads them", async () => {
    const asB = bearer(b.key);
    const docRes = await call(stack.proxy.url, 'GET', `/api/v1/documents/${bIds.document}`, { headers: asB });
    expect(docRes.status).toBe(200);
    expect(docRes.text).toContain(bSecrets[0]);
    const agent = await call(stack.agents.url, 'GET', `/api/v1/agents/${bIds.agent}`, { headers: asB });
    expect(agent.status).toBe(200);
    expect(agent.text).not.toContain('renamed by A');
    expect((await call(stack.agents.url, 'GET', `/api/v1/conversations/${bIds.conversation}`, { headers: asB })).status).toBe(200);
    const search = await call(stack.proxy.url, 'POST', '/api/v1/search', { headers: asB, body: { query: lure } });
    expect(search.status).toBe(200);
    expect(search.text).toContain(bIds.document);
    expect((await call(stack.agents.url, 'GET', '/api/v1/auth/me', { headers: asB })).status).toBe(200);
  });

  it("the same search by A and by B is cached apart: A's answer never holds B's document", async () => {
    const query = { query: `${lure} migrates` };
    for (let i = 0; i < 2; i++) {
      const asB = await call(stack.proxy.url, 'POST', '/api/v1/search', { headers: bearer(b.key), body: query });
      expect(asB.text).toContain(bIds.document);
      const asA = await call(stack.proxy.url, 'POST', '/api/v1/search', { headers: bearer(a.key), body: query });
      expect(asA.status).toBe(200);
      expect(asA.text).not.toContain(bIds.document);
      expect(asA.text).not.toContain(bSecrets[0]);
    }
  });

  it('a proxy reached directly with no credential is 401; with a service token it acts for the tenant the token names', async () => {
    expect((await call(stack.proxy.url, 'POST', '/api/v1/context', { auth: false, body: { query: 'x' } })).status).toBe(401);
    // ai-agents asking on A's behalf never brings B's document: the message's context is A's (empty) corpus.
    const agent = await ok<{ id: string }>(call(stack.agents.url, 'POST', '/api/v1/agents', { headers: bearer(a.key), body: { name: 'a-agent' } }));
    const conv = await ok<{ id: string }>(call(stack.agents.url, 'POST', `/api/v1/agents/${agent.id}/conversations`, { headers: bearer(a.key) }));
    const answer = await call(stack.agents.url, 'POST', `/api/v1/conversations/${conv.id}/messages`, { headers: bearer(a.key), body: { content: `where does the ${lure} go?` } });
    expect(answer.status, answer.text).toBe(201);
    expect(answer.text).not.toContain(bIds.document);
    expect(answer.text).not.toContain('migrates across the plain');
    expect(answer.text).not.toContain(bSecrets[0]);
  });
});
