/**
 * The main flows of the three services, driven through openapi-fetch clients typed by the services' own
 * OpenAPI documents. `packages/e2e/generated/*.ts` is written by openapi-typescript from the documents the running
 * services serve (see ../openapi-documents.test.ts), which then type-checks this file against them: a document
 * a client cannot use for these calls fails the test before anything is sent.
 */
import createClient, { defaultPathSerializer, type Client } from 'openapi-fetch';
import { expect } from 'vitest';
import type { paths as WorkerPaths } from '../../generated/multimodal-worker.js';
import type { paths as ProxyPaths } from '../../generated/retrieval-proxy.js';
import type { paths as AgentsPaths } from '../../generated/ai-agents.js';
import { recorder, type Seen } from './recorder.js';

export interface Urls {
  worker: string;
  proxy: string;
  agents: string;
}

export interface Clients {
  /** What every client sends (the user's API key). */
  headers: Record<string, string>;
  worker: Client<WorkerPaths>;
  proxy: Client<ProxyPaths>;
  agents: Client<AgentsPaths>;
  urls: Urls;
}

/** Clients of the three services, sending `apiKey`; every answer they get is noted in `seen`. */
export function typedClients(urls: Urls, seen: Seen[], apiKey: string): Clients {
  const headers = { authorization: `Bearer ${apiKey}` };
  const worker = createClient<WorkerPaths>({ baseUrl: urls.worker, headers });
  const proxy = createClient<ProxyPaths>({ baseUrl: urls.proxy, headers });
  const agents = createClient<AgentsPaths>({ baseUrl: urls.agents, headers });
  worker.use(recorder('worker', seen));
  proxy.use(recorder('proxy', seen));
  agents.use(recorder('agents', seen));
  return { headers, worker, proxy, agents, urls };
}

const DOC = {
  id: 'typed-client-tides',
  title: 'Tides',
  source: 'tides.md',
  text:
    'Tides rise and fall twice a day because the Moon pulls on the oceans. Spring tides, the largest, come when ' +
    'the Sun and the Moon line up at new and full moon; neap tides, the smallest, come at the quarter moons.',
};
const QUERY = 'spring tides moon sun line up';

export interface FlowState {
  agentId: string;
  conversationId: string;
  fileHash: string;
}

export async function ingestSearchAndContext(c: Clients): Promise<void> {
  const ingest = await c.proxy.POST('/api/v1/documents', { body: DOC });
  expect(ingest.response.status, JSON.stringify(ingest.error)).toBe(201);
  expect(ingest.data?.id).toBe(DOC.id);
  expect(ingest.data?.chunkCount).toBeGreaterThanOrEqual(1);

  const list = await c.proxy.GET('/api/v1/documents', { params: { query: { limit: 100 } } });
  expect(list.data?.documents.map((d) => d.id)).toContain(DOC.id);
  const one = await c.proxy.GET('/api/v1/documents/{id}', { params: { path: { id: DOC.id } } });
  expect(one.data?.title).toBe(DOC.title);

  const miss = await c.proxy.POST('/api/v1/search', { body: { query: QUERY, limit: 3 } });
  expect(miss.response.status, JSON.stringify(miss.error)).toBe(200);
  expect(miss.response.headers.get('x-cache')).toBe('miss');
  expect(miss.data?.results[0]?.documentId).toBe(DOC.id);
  const hit = await c.proxy.POST('/api/v1/search', { body: { query: QUERY, limit: 3 } });
  expect(hit.response.headers.get('x-cache')).toBe('hit');
  expect(hit.data).toEqual(miss.data);

  const context = await c.proxy.POST('/api/v1/context', { body: { query: QUERY } });
  expect(context.response.status, JSON.stringify(context.error)).toBe(200);
  expect(context.response.headers.get('x-cache')).toBe('miss');
  expect(context.data?.sections[0]?.citation.documentId).toBe(DOC.id);
  expect(context.data?.text).toContain('[1]');
}

export async function agentConversationAndMessage(c: Clients, state: FlowState): Promise<void> {
  const agent = await c.agents.POST('/api/v1/agents', { body: { name: 'Tide clerk', instructions: 'Answer from the documents.' } });
  expect(agent.response.status, JSON.stringify(agent.error)).toBe(201);
  state.agentId = agent.data!.id;
  const got = await c.agents.GET('/api/v1/agents/{id}', { params: { path: { id: state.agentId } } });
  expect(got.data?.name).toBe('Tide clerk');
  const agents = await c.agents.GET('/api/v1/agents', { params: { query: { limit: 100 } } });
  expect(agents.response.status).toBe(200);

  const conversation = await c.agents.POST('/api/v1/agents/{agentId}/conversations', {
    params: { path: { agentId: state.agentId } },
    body: { title: 'Tides' },
  });
  expect(conversation.response.status, JSON.stringify(conversation.error)).toBe(201);
  state.conversationId = conversation.data!.id;

  const message = await c.agents.POST('/api/v1/conversations/{id}/messages', {
    params: { path: { id: state.conversationId } },
    body: { content: 'When do spring tides happen, and why?' },
  });
  expect(message.response.status, JSON.stringify(message.error)).toBe(201);
  expect(message.data?.citations.map((x) => x.documentId)).toContain(DOC.id);
  expect(message.data?.reply.content.length).toBeGreaterThan(0);

  const history = await c.agents.GET('/api/v1/conversations/{id}/messages', { params: { path: { id: state.conversationId } } });
  expect(history.data?.items).toHaveLength(2);
  const memory = await c.agents.GET('/api/v1/agents/{id}/memory', { params: { path: { id: state.agentId } } });
  expect(memory.data?.items.length).toBeGreaterThanOrEqual(2);

  // A missing agent is the documented 404 error body, typed as such.
  const missing = await c.agents.GET('/api/v1/agents/{id}', { params: { path: { id: '00000000-0000-4000-8000-000000000000' } } });
  expect(missing.response.status).toBe(404);
  expect(missing.error?.statusCode).toBe(404);
}

export async function embeddingsModelsAndProcessing(c: Clients, state: FlowState): Promise<void> {
  const input = ['typed client one', 'typed client two'];
  const miss = await c.worker.POST('/api/v1/embeddings', { body: { input } });
  expect(miss.response.status, JSON.stringify(miss.error)).toBe(200);
  expect(miss.response.headers.get('x-cache')).toBe('miss');
  const first = miss.data?.data[0]?.embedding;
  expect(Array.isArray(first) && first.length).toBe(384);
  const hit = await c.worker.POST('/api/v1/embeddings', { body: { input, encoding_format: 'base64' } });
  expect(hit.response.headers.get('x-cache')).toBe('hit');
  expect(typeof hit.data?.data[0]?.embedding).toBe('string');

  const models = await c.worker.GET('/api/v1/models');
  const ids = models.data?.data.map((m) => m.id) ?? [];
  expect(ids).toContain('local-hash-384');

  const processed = await c.worker.POST('/api/v1/process/text', { body: { text: 'Neap tides come at the quarter moons. '.repeat(10) } });
  expect(processed.response.status, JSON.stringify(processed.error)).toBe(200);
  expect(processed.response.headers.get('x-cache')).toBe('miss');
  state.fileHash = processed.data!.fileHash;
}

/**
 * GET one model through every operation the document offers for it, whatever its path template: the
 * path is filled by openapi-fetch's own serializer, as a generated client would. `{*}` is not a usable
 * template (openapi-fetch sends `%7B*%7D`), so it is reported instead of called.
 */
export async function modelById(c: Clients, doc: { paths: Record<string, { get?: { parameters?: Array<{ in: string; name: string }> } }> }, id: string): Promise<string[]> {
  const unusable: string[] = [];
  const templates = Object.keys(doc.paths).filter((p) => p.startsWith('/api/v1/models/') && doc.paths[p]?.get);
  expect(templates.length).toBeGreaterThan(0);
  for (const template of templates) {
    const names = (doc.paths[template]!.get!.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name);
    if (names.some((n) => !/^\w+$/.test(n))) {
      unusable.push(template);
      continue;
    }
    // One parameter takes the whole id; two take it split at its slash ({owner}/{name}).
    const parts = names.length === 1 ? [id] : id.split('/');
    if (parts.length !== names.length) continue;
    const url = c.urls.worker + defaultPathSerializer(template, Object.fromEntries(names.map((n, i) => [n, parts[i]])));
    const res = await fetch(url, { headers: c.headers, signal: AbortSignal.timeout(10_000) });
    expect(res.status, `${template} -> ${url}`).toBe(200);
    expect(((await res.json()) as { id: string }).id).toBe(id);
  }
  return unusable;
}

/** The mutating admin operations every service has from the cache plugin. */
type AdminPaths = '/api/v1/cache/test' | '/api/v1/cache/invalidate' | '/api/v1/cache/clear';
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Holds<T extends true> = T;
/** Compiles only while the three documents declare them identically, which lets one client type drive all three. */
export type AdminAlike = [Holds<Same<Pick<ProxyPaths, AdminPaths>, Pick<WorkerPaths, AdminPaths>>>, Holds<Same<Pick<AgentsPaths, AdminPaths>, Pick<WorkerPaths, AdminPaths>>>];

export async function cacheStatsAndAdmin(c: Clients, token: string, state: FlowState): Promise<void> {
  const auth = { authorization: `Bearer ${token}` };
  // Stats are an admin route too: a user's key is refused, the admin token reads them.
  expect((await c.proxy.GET('/api/v1/cache/stats')).response.status).toBe(403);
  const stats = {
    'multimodal-worker': await c.worker.GET('/api/v1/cache/stats', { headers: auth }),
    'retrieval-proxy': await c.proxy.GET('/api/v1/cache/stats', { headers: auth }),
    'ai-agents': await c.agents.GET('/api/v1/cache/stats', { headers: auth }),
  };
  for (const [service, client] of [
    ['multimodal-worker', c.worker],
    ['retrieval-proxy', c.proxy],
    ['ai-agents', c.agents],
  ] as const) {
    const admin = client as unknown as Client<Pick<WorkerPaths, AdminPaths>>;
    expect(stats[service].response.status).toBe(200);
    expect(stats[service].data?.service).toBe(service);

    // The client sends a user's write key: an admin route refuses it with the error shape's code.
    const refused = await admin.POST('/api/v1/cache/test');
    expect(refused.response.status).toBe(403);
    expect(refused.error && 'code' in refused.error ? refused.error.code : refused.error).toBe('FORBIDDEN');
    const probe = await admin.POST('/api/v1/cache/test', { headers: auth });
    expect(probe.response.status, JSON.stringify(probe.error)).toBe(200);
    expect(probe.data?.status).toBe('ok');

    // ai-agents declares no cache category (its data is state): its invalidation is by tag, its clear service-wide.
    const category = Object.keys(stats[service].data?.service_stats.categories ?? {})[0];
    const invalidated = await admin.POST('/api/v1/cache/invalidate', {
      headers: auth,
      body: category ? { category, pattern: 'typed-client-nothing-*' } : { tags: ['typed-client-nothing'] },
    });
    expect(invalidated.response.status, JSON.stringify(invalidated.error)).toBe(200);
    expect(invalidated.data?.removed).toBe(0);
    const cleared = await admin.DELETE('/api/v1/cache/clear', { headers: auth, params: { query: category ? { category } : {} } });
    expect(cleared.response.status, JSON.stringify(cleared.error)).toBe(200);
    expect(typeof cleared.data?.removed).toBe('number');
  }

  const file = await c.worker.DELETE('/api/v1/cache/file/{fileHash}', { headers: auth, params: { path: { fileHash: state.fileHash } } });
  expect(file.response.status, JSON.stringify(file.error)).toBe(200);
  expect(file.data?.removed).toBeGreaterThanOrEqual(1);
  await c.proxy.POST('/api/v1/search', { body: { query: QUERY } });
  const searches = await c.proxy.DELETE('/api/v1/cache/search/{pattern}', { headers: auth, params: { path: { pattern: 'spring*' } } });
  expect(searches.response.status, JSON.stringify(searches.error)).toBe(200);
  expect(searches.data?.removed).toBeGreaterThanOrEqual(1);
}

export async function deleteWhatWasMade(c: Clients, state: FlowState): Promise<void> {
  const conversation = await c.agents.DELETE('/api/v1/conversations/{id}', { params: { path: { id: state.conversationId } } });
  expect(conversation.response.status).toBe(204);
  const agent = await c.agents.DELETE('/api/v1/agents/{id}', { params: { path: { id: state.agentId } } });
  expect(agent.response.status).toBe(204);
  const doc = await c.proxy.DELETE('/api/v1/documents/{id}', { params: { path: { id: DOC.id } } });
  expect(doc.response.status).toBe(204);
  const gone = await c.proxy.GET('/api/v1/documents/{id}', { params: { path: { id: DOC.id } } });
  expect(gone.response.status).toBe(404);
}
