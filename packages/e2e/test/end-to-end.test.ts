import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { scanKeys } from '@aicache/test-redis';
import { bearer, call, startStack, type Stack } from './stack.js';

/** Three documents with no words in common, so each query has one right answer. */
const DOCS = [
  {
    id: 'e2e-basalt',
    title: 'Basalt columns',
    source: 'geology-notes.md',
    text:
      'Columnar basalt forms when a thick lava flow cools slowly and contracts. The contraction cracks the volcanic rock ' +
      'into hexagonal columns, as seen at the Giant\'s Causeway and Devils Postpile. Geologists measure column width to ' +
      'estimate how fast the lava cooled.',
  },
  {
    id: 'e2e-sourdough',
    title: 'Sourdough starter',
    source: 'baking-notes.md',
    text:
      'A sourdough starter is a fermentation of flour and water by wild yeast and lactobacilli. Bakers feed the starter ' +
      'daily; the lactic acid gives sourdough bread its tangy flavour and the yeast leavens the dough overnight.',
  },
  {
    id: 'e2e-hohmann',
    title: 'Hohmann transfer',
    source: 'orbits-notes.md',
    text:
      'A Hohmann transfer orbit moves a spacecraft between two circular orbits with two engine burns. The first burn ' +
      'raises the apoapsis to the target orbit; the second burn at apoapsis circularizes. It is the most fuel-efficient ' +
      'two-impulse manoeuvre between coplanar orbits.',
  },
] as const;

const SOURDOUGH_QUERY = 'sourdough starter wild yeast fermentation';
const BASALT_QUERY = 'columnar basalt lava cooling';

let stack: Stack;
let db0: Redis;
let db1: Redis;
let db2: Redis;
const worker = (m: string, p: string, o?: Parameters<typeof call>[3]) => call(stack.worker.url, m, p, o);
const proxy = (m: string, p: string, o?: Parameters<typeof call>[3]) => call(stack.proxy.url, m, p, o);
const agents = (m: string, p: string, o?: Parameters<typeof call>[3]) => call(stack.agents.url, m, p, o);

async function searchStats(): Promise<{ hits: number; misses: number }> {
  const res = await proxy('GET', '/api/v1/cache/stats', { headers: bearer(stack.token) });
  expect(res.status).toBe(200);
  const c = res.json.service_stats.categories.search_results;
  return { hits: c.hits, misses: c.misses };
}

describe('the three services as real processes', () => {
  const state = { agentId: '', conversationId: '', requestId: `e2e-${randomUUID()}` };

  beforeAll(async () => {
    // The proxy logs requests (info) so a request id sent to ai-agents can be found in its output.
    stack = await startStack({ env: { 'retrieval-proxy': { LOG_LEVEL: 'info' } } });
    db0 = stack.db(0);
    db1 = stack.db(1);
    db2 = stack.db(2);
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it('ingests three documents through the proxy', async () => {
    for (const doc of DOCS) {
      const res = await proxy('POST', '/api/v1/documents', { body: doc });
      expect(res.status, res.text).toBe(201);
      expect(res.json).toMatchObject({ id: doc.id, title: doc.title });
      expect(res.json.chunkCount).toBeGreaterThanOrEqual(1);
    }
    const list = await proxy('GET', '/api/v1/documents?limit=100');
    expect(list.status).toBe(200);
    expect(list.json.documents.map((d: { id: string }) => d.id).sort()).toEqual(DOCS.map((d) => d.id).sort());
  });

  it('answers a search from origin first, then from the cache, and counts the hit in /cache/stats', async () => {
    const before = await searchStats();
    const first = await proxy('POST', '/api/v1/search', { body: { query: SOURDOUGH_QUERY, limit: 3 } });
    expect(first.status, first.text).toBe(200);
    expect(first.headers.get('x-cache')).toBe('miss');
    expect(first.json.results[0].documentId).toBe('e2e-sourdough');

    const afterMiss = await searchStats();
    expect(afterMiss).toEqual({ hits: before.hits, misses: before.misses + 1 });

    const second = await proxy('POST', '/api/v1/search', { body: { query: SOURDOUGH_QUERY, limit: 3 } });
    expect(second.status).toBe(200);
    expect(second.headers.get('x-cache')).toBe('hit');
    expect(second.json).toEqual(first.json);

    const afterHit = await searchStats();
    expect(afterHit).toEqual({ hits: afterMiss.hits + 1, misses: afterMiss.misses });
  });

  it('keeps each service\'s cache in its own DB: embeddings in DB 0, search results in DB 1', async () => {
    const embeddings = await scanKeys(db0, 'multimodal-worker:embeddings:*');
    expect(embeddings.length).toBeGreaterThan(0);
    const searches = await scanKeys(db1, 'retrieval-proxy:search_results:*');
    expect(searches.length).toBeGreaterThan(0);

    const all = { 0: await scanKeys(db0), 1: await scanKeys(db1), 2: await scanKeys(db2) };
    const owners: Record<number, string> = { 0: 'multimodal-worker', 1: 'retrieval-proxy', 2: 'ai-agents' };
    for (const [dbIndex, keys] of Object.entries(all)) {
      const own = owners[Number(dbIndex)]!;
      const foreign = keys.filter((k) => !k.startsWith(`${own}:`) && !k.startsWith(`state:${own}:`) && !k.startsWith(`jobs:{${own}}:`));
      expect(foreign, `DB ${dbIndex} holds keys of another service`).toEqual([]);
    }
    expect(all[0].some((k) => k.startsWith('retrieval-proxy:'))).toBe(false);
    expect(all[1].some((k) => k.startsWith('multimodal-worker:'))).toBe(false);
    // The document index is state, never under the cache prefix.
    expect(all[1].some((k) => k.startsWith('state:retrieval-proxy:'))).toBe(true);
  });

  it('creates an agent and a conversation; a message is answered with a citation of the ingested document', async () => {
    const agent = await agents('POST', '/api/v1/agents', {
      body: { name: 'Baker', instructions: 'Answer baking questions from the documents.' },
    });
    expect(agent.status, agent.text).toBe(201);
    state.agentId = agent.json.id;

    const conv = await agents('POST', `/api/v1/agents/${state.agentId}/conversations`, { body: { title: 'Starters' } });
    expect(conv.status, conv.text).toBe(201);
    state.conversationId = conv.json.id;

    const msg = await agents('POST', `/api/v1/conversations/${state.conversationId}/messages`, {
      body: { content: 'How does a sourdough starter use wild yeast for fermentation?' },
      headers: { 'x-request-id': state.requestId },
    });
    expect(msg.status, msg.text).toBe(201);
    expect(msg.headers.get('x-request-id')).toBe(state.requestId);
    const cited = msg.json.citations.map((c: { documentId: string }) => c.documentId);
    expect(cited).toContain('e2e-sourdough');
    expect(msg.json.reply.citations.map((c: { documentId: string }) => c.documentId)).toContain('e2e-sourdough');
    expect(msg.json.reply.content.length).toBeGreaterThan(0);
  });

  it('propagates the request id from ai-agents to the retrieval-proxy (seen in the proxy log)', async () => {
    // The proxy's log line travels through a pipe on its own schedule: on a busy machine it can land
    // after ai-agents' answer, so wait for it (bounded) before looking.
    const deadline = Date.now() + 5_000;
    while (!stack.proxy.output.includes(state.requestId) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(stack.proxy.output).toContain(state.requestId);
  });

  it('forgets a processed file on the worker: files entry gone from DB 0, next call is a miss', async () => {
    const body = { text: 'Tidal locking keeps one face of the Moon toward Earth. '.repeat(20) };
    const first = await worker('POST', '/api/v1/process/text', { body });
    expect(first.status, first.text).toBe(200);
    expect(first.headers.get('x-cache')).toBe('miss');
    const again = await worker('POST', '/api/v1/process/text', { body });
    expect(again.headers.get('x-cache')).toBe('hit');

    const fileHash: string = first.json.fileHash;
    expect(fileHash).toMatch(/^[0-9a-f]{64}$/);
    expect(await scanKeys(db0, `multimodal-worker:files:*${fileHash}*`)).not.toEqual([]);

    const del = await worker('DELETE', `/api/v1/cache/file/${fileHash}`, { headers: bearer(stack.token) });
    expect(del.status, del.text).toBe(200);
    expect(del.json.removed).toBeGreaterThanOrEqual(1);
    expect(await scanKeys(db0, `multimodal-worker:files:*${fileHash}*`)).toEqual([]);

    const after = await worker('POST', '/api/v1/process/text', { body });
    expect(after.status).toBe(200);
    expect(after.headers.get('x-cache')).toBe('miss');
  });

  it('invalidates search results by pattern on the proxy: matching entries gone, others kept, next search a miss', async () => {
    const basalt = await proxy('POST', '/api/v1/search', { body: { query: BASALT_QUERY } });
    expect(basalt.status).toBe(200);
    const warm = await proxy('POST', '/api/v1/search', { body: { query: SOURDOUGH_QUERY, limit: 3 } });
    expect(warm.headers.get('x-cache')).toBe('hit');
    expect(await scanKeys(db1, 'retrieval-proxy:search_results:q:*:sourdough*')).not.toEqual([]);

    const del = await proxy('DELETE', '/api/v1/cache/search/sourdough*', { headers: bearer(stack.token) });
    expect(del.status, del.text).toBe(200);
    expect(del.json.removed).toBeGreaterThanOrEqual(1);
    expect(await scanKeys(db1, 'retrieval-proxy:search_results:q:*:sourdough*')).toEqual([]);
    expect(await scanKeys(db1, 'retrieval-proxy:search_results:q:*:columnar-basalt*')).not.toEqual([]);

    const next = await proxy('POST', '/api/v1/search', { body: { query: SOURDOUGH_QUERY, limit: 3 } });
    expect(next.status).toBe(200);
    expect(next.headers.get('x-cache')).toBe('miss');
    const basaltAgain = await proxy('POST', '/api/v1/search', { body: { query: BASALT_QUERY } });
    expect(basaltAgain.headers.get('x-cache')).toBe('hit');
  });

  it("answers 401 on every mutating admin route without a credential (or with a wrong one), 403 to a user's write key, and removes nothing", async () => {
    const before = { 0: await scanKeys(db0), 1: await scanKeys(db1), 2: await scanKeys(db2) };
    const hash = 'a'.repeat(64);
    const routes: Array<[string, string, string, unknown?]> = [];
    for (const svc of ['worker', 'proxy', 'agents'] as const) {
      const url = stack[svc].url;
      routes.push(
        [url, 'DELETE', '/api/v1/cache/clear'],
        [url, 'POST', '/api/v1/cache/invalidate', { category: 'x', pattern: '*' }],
        [url, 'POST', '/api/v1/cache/test'],
      );
    }
    routes.push([stack.worker.url, 'DELETE', `/api/v1/cache/file/${hash}`], [stack.proxy.url, 'DELETE', '/api/v1/cache/search/*']);

    const failures: string[] = [];
    for (const [url, method, path, body] of routes) {
      const variants: Array<[Record<string, string>, number]> = [
        [{}, 401],
        [{ authorization: 'Bearer wrong-token' }, 401],
        [{ authorization: stack.token }, 401],
        [bearer(stack.user.key), 403],
      ];
      for (const [headers, expected] of variants) {
        const res = await call(url, method, path, { headers, auth: 'authorization' in headers ? undefined : false, ...(body ? { body } : {}) });
        if (res.status !== expected) failures.push(`${method} ${url}${path} ${JSON.stringify(headers)} -> ${res.status} ${res.text.slice(0, 200)}`);
      }
    }
    expect(failures).toEqual([]);
    const after = { 0: await scanKeys(db0), 1: await scanKeys(db1), 2: await scanKeys(db2) };
    for (const i of [0, 1, 2] as const) expect(before[i].filter((k) => !after[i].includes(k) && !k.includes('__lease'))).toEqual([]);
  });

  it('keeps agents, conversations, memory and the document index across a restart of ai-agents and retrieval-proxy', async () => {
    const agentBefore = await agents('GET', `/api/v1/agents/${state.agentId}`);
    const historyBefore = await agents('GET', `/api/v1/conversations/${state.conversationId}/messages`);
    const memoryBefore = await agents('GET', `/api/v1/agents/${state.agentId}/memory`);
    const docBefore = await proxy('GET', '/api/v1/documents/e2e-sourdough');
    expect(historyBefore.json.items).toHaveLength(2);
    expect(memoryBefore.json.items.length).toBeGreaterThanOrEqual(2);
    expect(docBefore.status).toBe(200);

    const oldPids = [stack.agents.pid, stack.proxy.pid];
    await stack.agents.stop('SIGTERM');
    await stack.proxy.stop('SIGTERM');
    expect(stack.agents.running).toBe(false);
    expect(stack.proxy.running).toBe(false);
    await stack.proxy.start();
    await stack.agents.start();
    expect([stack.agents.pid, stack.proxy.pid]).not.toEqual(oldPids);

    const agent = await agents('GET', `/api/v1/agents/${state.agentId}`);
    expect(agent.status).toBe(200);
    expect(agent.json).toEqual(agentBefore.json);

    const history = await agents('GET', `/api/v1/conversations/${state.conversationId}/messages`);
    expect(history.status).toBe(200);
    expect(history.json.items).toEqual(historyBefore.json.items);

    const memory = await agents('GET', `/api/v1/agents/${state.agentId}/memory`);
    expect(memory.status).toBe(200);
    expect(memory.json.items).toEqual(memoryBefore.json.items);

    const doc = await proxy('GET', '/api/v1/documents/e2e-sourdough');
    expect(doc.status).toBe(200);
    expect(doc.json).toEqual(docBefore.json);

    const search = await proxy('POST', '/api/v1/search', { body: { query: 'hohmann transfer orbit burns spacecraft' } });
    expect(search.status).toBe(200);
    expect(search.json.results[0].documentId).toBe('e2e-hohmann');

    // And the restarted pair still works together.
    const msg = await agents('POST', `/api/v1/conversations/${state.conversationId}/messages`, {
      body: { content: 'Which engine burns does a Hohmann transfer orbit need?' },
    });
    expect(msg.status, msg.text).toBe(201);
    expect(msg.json.citations.map((c: { documentId: string }) => c.documentId)).toContain('e2e-hohmann');
  });
});
