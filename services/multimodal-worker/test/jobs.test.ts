import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { startRedisServer, uniqueName, waitFor, type RedisServer } from '@aicache/test-redis';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { LocalHashProvider } from '../src/providers/local-hash.js';
import type { EmbeddingProvider, ModelMetadata } from '../src/providers/types.js';
import { chunkTextAsync, defaultChunkOverlap, textSha256 } from '@aicache/text';
import { followJobEvents } from '@aicache/jobs/client';
import { ADMIN_TOKEN, bearer, readKey, startWorkerProcess } from './helpers.js';

/**
 * Embeddings of more inputs than one request takes, as background jobs: on a private redis-server (noeviction) with
 * authentication on, progress followed over Server-Sent Events on a real socket, the vectors read in pages and
 * compared with the synchronous route's, tenancy, cancel and resume, bad input, and the eviction refusal.
 */
const CACHE_DB = 1;
const AUTH_DB = 2;

/** The built-in model, counted and optionally slowed down, to see what reached it and to catch a job mid-way. */
class SlowCountingProvider implements EmbeddingProvider {
  private readonly inner = new LocalHashProvider();
  delayMs = 0;
  computed = 0;
  get id() {
    return this.inner.id;
  }
  get dimensions() {
    return this.inner.dimensions;
  }
  async embed(texts: string[]): Promise<Float32Array[]> {
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    this.computed += texts.length;
    return this.inner.embed(texts);
  }
  describe(): ModelMetadata {
    return this.inner.describe();
  }
}

let server: RedisServer;
let raw: Redis;
let app: FastifyInstance;
let base = '';
let service = '';
const provider = new SlowCountingProvider();
const keys = { acme: '', globex: '' };

const configOf = (url: string, extra: Record<string, string> = {}) =>
  loadConfig({
    NODE_ENV: 'test',
    AUTH_MODE: 'on',
    LOG_LEVEL: 'silent',
    REDIS_URL: url,
    REDIS_DB_MULTIMODAL_WORKER: String(CACHE_DB),
    REDIS_DB_AUTH: String(AUTH_DB),
    SERVICE_NAME: service,
    CACHE_ADMIN_TOKEN: ADMIN_TOKEN,
    CACHE_COMMAND_TIMEOUT_MS: '5000',
    EMBEDDINGS_BODY_LIMIT_BYTES: String(1024 * 1024),
    EMBEDDINGS_INPUTS_PER_MINUTE: '1000000',
    JOBS_CONCURRENCY: '1',
    JOBS_ATTEMPTS: '2',
    JOBS_BACKOFF_MS: '100',
    ...extra,
  });



type As = keyof typeof keys;
const call = (as: As, method: 'GET' | 'POST' | 'DELETE', url: string, payload?: object) =>
  app.inject({ method, url, headers: bearer(keys[as]), ...(payload ? { payload } : {}) });

const inputsOf = (n: number, tag: string) => Array.from({ length: n }, (_, i) => `${tag} input ${i}: refunds within ${i % 31} days, order ${i * 7}`);

interface Event {
  event: string;
  data: { state: string; progress: { current: number; total: number; percentage: number }; result?: Record<string, unknown> };
}

/** Reads the job's SSE stream over HTTP until the server ends it. */
async function follow(as: As, id: string): Promise<Event[]> {
  const { status, events } = await followJobEvents<Event['data']>(`${base}/api/v1/jobs/${id}/events`, { headers: bearer(keys[as]) });
  expect(status).toBe(200);
  return events;
}

const jobOf = async (as: As, id: string) => (await call(as, 'GET', `/api/v1/jobs/${id}`)).json();

interface Page {
  object: string;
  data: Array<{ object: string; index: number; embedding: number[] | string }>;
  model: string;
  usage: { prompt_tokens: number; total_tokens: number };
  total: number;
  offset: number;
  has_more: boolean;
}

async function page(as: As, id: string, query: string): Promise<Page> {
  const res = await call(as, 'GET', `/api/v1/jobs/${id}/embeddings?${query}`);
  expect(res.statusCode, res.body.slice(0, 300)).toBe(200);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  return res.json() as Page;
}

/** The synchronous route's vectors for these inputs. */
async function syncVectors(inputs: string[], format: 'float' | 'base64' = 'float'): Promise<Array<number[] | string>> {
  const res = await call('acme', 'POST', '/api/v1/embeddings', { input: inputs, encoding_format: format });
  expect(res.statusCode, res.body.slice(0, 300)).toBe(200);
  return (res.json() as Page).data.map((d) => d.embedding);
}

async function keysMatching(pattern: string, db = AUTH_DB): Promise<string[]> {
  const client = db === AUTH_DB ? raw : new Redis(server.url, { db });
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    found.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  if (client !== raw) client.disconnect();
  return found;
}

beforeAll(async () => {
  server = await startRedisServer({ args: ['--maxmemory-policy', 'noeviction'] });
  raw = new Redis(server.url, { db: AUTH_DB });
  service = uniqueName('mmw-jobs');
  app = await buildApp(configOf(server.url), { providers: [provider], logger: false, underPressure: false, adminRateLimit: false });
  base = await app.listen({ port: 0, host: '127.0.0.1' });
  keys.acme = await readKey(app, 'acme-reader', 'acme');
  keys.globex = await readKey(app, 'globex-reader', 'globex');
}, 60_000);

afterAll(async () => {
  await app?.close();
  raw?.disconnect();
  await server?.stop();
});

describe('an embeddings job', () => {
  const inputs = inputsOf(10_000, 'bulk');
  let id = '';

  it('embeds 10,000 inputs in batches with monotone progress to 100 %', async () => {
    const before = provider.computed;
    const start = await call('acme', 'POST', '/api/v1/jobs/embeddings', { input: inputs, model: 'local-hash-384', batchSize: 500 });
    expect(start.statusCode, start.body.slice(0, 300)).toBe(202);
    const job = start.json();
    expect(job).toMatchObject({ kind: 'embeddings', duplicate: false });
    expect(start.headers.location).toBe(`/api/v1/jobs/${job.id}`);
    id = job.id;

    const events = await follow('acme', id);
    const progress = events.filter((e) => e.event === 'progress').map((e) => e.data.progress.percentage);
    expect(progress.length).toBeGreaterThanOrEqual(2);
    for (let i = 1; i < progress.length; i++) expect(progress[i]).toBeGreaterThanOrEqual(progress[i - 1] as number);
    const last = events.at(-1)!;
    expect(last.event).toBe('completed');
    expect(last.data.progress).toEqual({ current: 10_000, total: 10_000, percentage: 100 });
    expect(last.data.result).toMatchObject({
      inputs: 10_000,
      model: 'local-hash-384',
      dimensions: 384,
      batchSize: 500,
      batches: 20,
      computed: 10_000,
      read: `/api/v1/jobs/${id}/embeddings`,
    });
    expect(last.data.result!.promptTokens).toBeGreaterThan(10_000);
    expect(provider.computed - before).toBe(10_000);
  }, 120_000);

  it('keeps the inputs out of the job record, drops them once done, and gives the vectors the retention of the job', async () => {
    // BullMQ's hash of the job: its data is a reference, not 10,000 strings (reading the job stays cheap).
    const data = await raw.hget(`jobs:{${service}}:jobs:${id}`, 'data');
    expect(data).not.toBeNull();
    expect(data!.length).toBeLessThan(1000);
    expect(await keysMatching(`jobs:{${service}}:input:*`)).toEqual([]);
    const out = await keysMatching(`jobs:{${service}}:out:${id}:*`);
    expect(out).toHaveLength(21); // 20 batches and their token counts
    for (const key of out) {
      const ttl = await raw.ttl(key);
      expect(ttl).toBeGreaterThan(86_400 - 60);
      expect(ttl).toBeLessThanOrEqual(86_400);
    }
    // 500 vectors of 384 float32.
    expect(await raw.strlen(`jobs:{${service}}:out:${id}:0`)).toBe(500 * 384 * 4);
  });

  it('serves the vectors in pages equal to what the synchronous route answers for the same inputs', async () => {
    const first = await page('acme', id, 'offset=0&limit=2048');
    expect(first).toMatchObject({ object: 'list', model: 'local-hash-384', total: 10_000, offset: 0, has_more: true });
    expect(first.usage.prompt_tokens).toBeGreaterThan(10_000);
    expect(first.data).toHaveLength(2048);
    expect(first.data.map((d) => d.index)).toEqual(Array.from({ length: 2048 }, (_, i) => i));
    expect(first.data.every((d) => d.object === 'embedding')).toBe(true);
    expect(first.data.map((d) => d.embedding)).toEqual(await syncVectors(inputs.slice(0, 2048)));

    // A page across batch boundaries (4,750 .. 6,249 spans batches 9 to 12).
    const middle = await page('acme', id, 'offset=4750&limit=1500');
    expect(middle.data.map((d) => d.index)).toEqual(Array.from({ length: 1500 }, (_, i) => 4750 + i));
    expect(middle.data.map((d) => d.embedding)).toEqual(await syncVectors(inputs.slice(4750, 6250)));

    const base64 = await page('acme', id, 'offset=7001&limit=333&encoding_format=base64');
    expect(typeof base64.data[0]!.embedding).toBe('string');
    expect(base64.data.map((d) => d.embedding)).toEqual(await syncVectors(inputs.slice(7001, 7334), 'base64'));

    const tail = await page('acme', id, 'offset=9000&limit=2048');
    expect(tail).toMatchObject({ offset: 9000, total: 10_000, has_more: false });
    expect(tail.data).toHaveLength(1000);
    expect(tail.data.at(-1)!.index).toBe(9999);
    expect(tail.data.map((d) => d.embedding)).toEqual(await syncVectors(inputs.slice(9000)));

    const end = await page('acme', id, 'offset=10000');
    expect(end).toMatchObject({ data: [], has_more: false });
    expect((await call('acme', 'GET', `/api/v1/jobs/${id}/embeddings?offset=10001`)).statusCode).toBe(400);
    expect((await call('acme', 'GET', `/api/v1/jobs/${id}/embeddings?limit=2049`)).statusCode).toBe(400);
    expect((await call('acme', 'GET', `/api/v1/jobs/${id}/embeddings?encoding_format=hex`)).statusCode).toBe(400);
  }, 60_000);

  it("answers another tenant's job exactly as an unknown one, and no one without a credential", async () => {
    const foreign = await call('globex', 'GET', `/api/v1/jobs/${id}/embeddings`);
    expect(foreign.statusCode).toBe(404);
    expect(foreign.json()).toMatchObject({ code: 'NOT_FOUND', message: `job '${id}' not found` });
    expect((await call('globex', 'GET', `/api/v1/jobs/${id}`)).statusCode).toBe(404);
    expect((await call('globex', 'GET', '/api/v1/jobs/embeddings-0000/embeddings')).statusCode).toBe(404);
    expect((await app.inject({ method: 'GET', url: `/api/v1/jobs/${id}/embeddings` })).statusCode).toBe(401);
    expect((await app.inject({ method: 'POST', url: '/api/v1/jobs/embeddings', payload: { input: ['x'] } })).statusCode).toBe(401);
  });

  it('answers the same submission with the job already started, storing nothing twice', async () => {
    const before = provider.computed;
    const again = await call('acme', 'POST', '/api/v1/jobs/embeddings', { batchSize: 500, model: 'local-hash-384', input: inputs });
    expect(again.statusCode).toBe(202);
    expect(again.json()).toMatchObject({ id, duplicate: true, state: 'completed' });
    expect(await keysMatching(`jobs:{${service}}:input:*`)).toEqual([]);
    expect(provider.computed).toBe(before);
  });
});

describe('cancel and resume', () => {
  it('stops a running job at its next batch; a retry resumes after the stored batches without computing them again', async () => {
    const inputs = inputsOf(4000, 'resume');
    provider.delayMs = 100;
    const job = (await call('acme', 'POST', '/api/v1/jobs/embeddings', { input: inputs, batchSize: 200 })).json();
    await waitFor('the job to make progress', async () => ((await jobOf('acme', job.id)).progress.current >= 600 ? true : undefined), 30_000);

    // Concurrency 1: a second job waits; cancelled before it starts, it is removed with the inputs stored for it.
    const queued = (await call('acme', 'POST', '/api/v1/jobs/embeddings', { input: inputsOf(50, 'queued') })).json();
    expect((await jobOf('acme', queued.id)).state).toBe('waiting');
    expect(await keysMatching(`jobs:{${service}}:input:${queued.id}:*`)).toHaveLength(1);
    const removed = await call('acme', 'DELETE', `/api/v1/jobs/${queued.id}`);
    expect(removed.statusCode).toBe(200);
    expect(removed.json().state).toBe('cancelled');
    expect(await keysMatching(`jobs:{${service}}:input:${queued.id}:*`)).toEqual([]);

    const cancel = await call('acme', 'DELETE', `/api/v1/jobs/${job.id}`);
    expect(cancel.statusCode).toBe(202);
    const events = await follow('acme', job.id);
    const last = events.at(-1)!;
    expect(last.event).toBe('cancelled');
    const stoppedAt = last.data.progress.current;
    expect(stoppedAt).toBeGreaterThanOrEqual(600);
    expect(stoppedAt).toBeLessThan(4000);
    expect(stoppedAt % 200).toBe(0);
    const early = await call('acme', 'GET', `/api/v1/jobs/${job.id}/embeddings`);
    expect(early.statusCode).toBe(409);
    expect(early.json().message).toBe(`job '${job.id}' is cancelled: its embeddings can be read once it has completed`);
    provider.delayMs = 0;

    // Without the embeddings cache, a batch embedded again would reach the model: only the rest may.
    const cacheKeys = await keysMatching('*', CACHE_DB);
    expect(cacheKeys.length).toBeGreaterThan(0);
    const cache = new Redis(server.url, { db: CACHE_DB });
    for (let i = 0; i < cacheKeys.length; i += 1000) await cache.del(...cacheKeys.slice(i, i + 1000));
    cache.disconnect();
    const before = provider.computed;

    expect((await call('acme', 'POST', `/api/v1/jobs/${job.id}/retry`)).statusCode).toBe(202);
    const resumed = (await follow('acme', job.id)).at(-1)!;
    expect(resumed).toMatchObject({ event: 'completed', data: { progress: { current: 4000, total: 4000 }, result: { resumedFrom: stoppedAt, computed: 4000 - stoppedAt } } });
    expect(provider.computed - before).toBe(4000 - stoppedAt);

    // Every vector is there, those of the first run and those of the second.
    for (const offset of [0, stoppedAt - 100, 3000]) {
      const got = await page('acme', job.id, `offset=${offset}&limit=200`);
      expect(got.data.map((d) => d.embedding)).toEqual(await syncVectors(inputs.slice(offset, offset + 200)));
    }
  }, 120_000);
});

describe('a job whose process is killed', () => {
  it('is handed to another process, which resumes after the stored batches without computing them again', async () => {
    const HANDOVER_CACHE_DB = 4;
    const HANDOVER_AUTH_DB = 5;
    const name = uniqueName('mmw-handover');
    const env = {
      NODE_ENV: 'test',
      AUTH_MODE: 'off',
      LOG_LEVEL: 'silent',
      REDIS_URL: server.url,
      REDIS_DB_MULTIMODAL_WORKER: String(HANDOVER_CACHE_DB),
      REDIS_DB_AUTH: String(HANDOVER_AUTH_DB),
      SERVICE_NAME: name,
      EMBEDDINGS_LOCAL_MODELS: 'local-hash-384',
      JOBS_CONCURRENCY: '1',
      JOBS_STALLED_INTERVAL_MS: '500',
      JOBS_LOCK_DURATION_MS: '1000',
    };
    const child = await startWorkerProcess(env);
    const total = 60_000;
    const inputs = inputsOf(total, 'handover');
    let survivor: FastifyInstance | undefined;
    try {
      const start = await fetch(`${child.url}/api/v1/jobs/embeddings`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ input: inputs, batchSize: 100 }),
      });
      expect(start.status, child.output().slice(-500)).toBe(202);
      const { id } = (await start.json()) as { id: string };
      const before = await waitFor('progress in the child', async () => {
        const job = (await (await fetch(`${child.url}/api/v1/jobs/${id}`)).json()) as { progress: { current: number } };
        return job.progress.current >= 5000 ? job.progress.current : undefined;
      }, 30_000);
      await child.kill();
      expect(before).toBeLessThan(total);

      // Without the embeddings cache, a batch embedded again would reach the model: only those not stored may.
      const cacheKeys = await keysMatching('*', HANDOVER_CACHE_DB);
      const cache = new Redis(server.url, { db: HANDOVER_CACHE_DB });
      for (let i = 0; i < cacheKeys.length; i += 1000) await cache.del(...cacheKeys.slice(i, i + 1000));
      cache.disconnect();

      const counted = new SlowCountingProvider();
      // Its own lock lasts longer: a busy machine must not make it look stalled to itself while it works.
      survivor = await buildApp(loadConfig({ ...env, JOBS_LOCK_DURATION_MS: '10000' }), { providers: [counted], logger: false, underPressure: false });
      await survivor.ready();
      const done = await waitFor(
        'the job to finish in the survivor',
        async () => {
          const job = (await survivor!.inject({ method: 'GET', url: `/api/v1/jobs/${id}` })).json();
          return job.state === 'completed' ? job : undefined;
        },
        60_000,
      );
      expect(done.progress).toEqual({ current: total, total, percentage: 100 });
      const resumedFrom = done.result.resumedFrom as number;
      expect(resumedFrom).toBeGreaterThanOrEqual(before - 100);
      expect(resumedFrom % 100).toBe(0);
      expect(done.result.computed).toBe(total - resumedFrom);
      expect(counted.computed).toBe(total - resumedFrom);
      for (const offset of [0, resumedFrom - 50, total - 10]) {
        const res = await survivor.inject({ method: 'GET', url: `/api/v1/jobs/${id}/embeddings?offset=${offset}&limit=100` });
        const got = (res.json() as Page).data.map((d) => d.embedding);
        const want = await survivor.inject({ method: 'POST', url: '/api/v1/embeddings', payload: { input: inputs.slice(offset, offset + 100) } });
        expect(got).toEqual((want.json() as Page).data.map((d) => d.embedding));
      }
    } finally {
      await child.stop();
      await survivor?.close();
    }
  }, 120_000);
});

describe('bad input', () => {
  it('is a 400 at submission naming what is wrong, and starts nothing', async () => {
    const listed = async () => (await call('acme', 'GET', '/api/v1/jobs?limit=100')).json().total as number;
    const jobs = await listed();
    const empty = await call('acme', 'POST', '/api/v1/jobs/embeddings', { input: ['fine', 'also fine', ''] });
    expect(empty.statusCode).toBe(400);
    expect(empty.json().message).toBe('input[2] is empty');
    const model = await call('acme', 'POST', '/api/v1/jobs/embeddings', { input: ['fine'], model: 'no-such-model' });
    expect(model.statusCode).toBe(400);
    expect(model.json().message).toMatch(/unknown model 'no-such-model'; available models: local-hash-384/);
    const long = await call('acme', 'POST', '/api/v1/jobs/embeddings', { input: ['fine', 'x'.repeat(40_000)] });
    expect(long.statusCode).toBe(400);
    expect(long.json().message).toMatch(/^input\[1\] has 40000 characters; model 'local-hash-384' accepts at most/);
    const dims = await call('acme', 'POST', '/api/v1/jobs/embeddings', { input: ['fine'], dimensions: 12 });
    expect(dims.statusCode).toBe(400);
    expect(dims.json().message).toMatch(/384 dimensions; dimensions=12/);
    expect((await call('acme', 'POST', '/api/v1/jobs/embeddings', { input: [] })).statusCode).toBe(400);
    expect((await call('acme', 'POST', '/api/v1/jobs/embeddings', { input: 'one string' })).statusCode).toBe(400);
    expect((await call('acme', 'POST', '/api/v1/jobs/embeddings', { input: ['x'], batchSize: 0 })).statusCode).toBe(400);
    expect(await listed()).toBe(jobs);
    expect(await keysMatching(`jobs:{${service}}:input:*`)).toEqual([]);
  });

  it('past EMBEDDINGS_JOB_MAX_INPUTS or the body limit is refused before anything is stored', async () => {
    const small = await buildApp(configOf(server.url, { AUTH_MODE: 'off', SERVICE_NAME: uniqueName('mmw-small'), EMBEDDINGS_JOB_MAX_INPUTS: '10', EMBEDDINGS_JOB_BODY_LIMIT_BYTES: '2048', PROCESS_JOB_MAX_TEXT_BYTES: '1024' }), {
      providers: [new LocalHashProvider()],
      logger: false,
      underPressure: false,
    });
    try {
      const many = await small.inject({ method: 'POST', url: '/api/v1/jobs/embeddings', payload: { input: inputsOf(11, 'many').map((s) => s.slice(0, 5)) } });
      expect(many.statusCode).toBe(400);
      const big = await small.inject({ method: 'POST', url: '/api/v1/jobs/embeddings', payload: { input: ['y'.repeat(3000)] } });
      expect(big.statusCode).toBe(413);
      const text = await small.inject({ method: 'POST', url: '/api/v1/jobs/process', payload: { text: 'é'.repeat(600) } });
      expect(text.statusCode).toBe(413);
      expect(text.json().message).toBe('text is 1200 bytes; the limit is 1024 bytes');
    } finally {
      await small.close();
    }
  });
});

describe('a process job', () => {
  // About 3 MB: over the 2 MiB the synchronous route takes.
  const text = Array.from(
    { length: 9000 },
    (_, i) => `Paragraph ${i} of the handbook. Refunds are granted within ${i % 30} days of delivery; order ${i * 13} ships from depot ${i % 7}. ` +
      'Customers keep their receipt, and the support desk answers within two working days, every week of the year, holidays aside.\n\n',
  ).join('');
  let id = '';

  it('is what the synchronous route points a too-large text to', async () => {
    expect(Buffer.byteLength(text)).toBeGreaterThan(2 * 1024 * 1024);
    const sync = await call('acme', 'POST', '/api/v1/process/text', { text });
    expect(sync.statusCode).toBe(413);
    expect(sync.json().message).toMatch(/^text is \d+ bytes; the limit is 2097152 bytes \(2 MiB\); larger texts go to a background job: POST \/api\/v1\/jobs\/process/);
  });

  it('chunks and embeds a 3 MB text in batches; its chunks and embeddings are read in pages', async () => {
    const start = await call('acme', 'POST', '/api/v1/jobs/process', { text, filename: 'handbook.md', includeEmbeddings: true, batchSize: 500 });
    expect(start.statusCode, start.body.slice(0, 300)).toBe(202);
    id = start.json().id;
    const events = await follow('acme', id);
    const progress = events.filter((e) => e.event === 'progress').map((e) => e.data.progress.current);
    for (let i = 1; i < progress.length; i++) expect(progress[i]).toBeGreaterThanOrEqual(progress[i - 1] as number);
    const last = events.at(-1)!;
    expect(last.event, JSON.stringify(last.data).slice(0, 300)).toBe('completed');

    const expected = await chunkTextAsync(text, { chunkSize: 1000, chunkOverlap: defaultChunkOverlap(1000) });
    expect(expected.length).toBeGreaterThan(2048);
    expect(last.data.progress).toMatchObject({ current: expected.length, total: expected.length, percentage: 100 });
    expect(last.data.result).toMatchObject({
      filename: 'handbook.md',
      fileHash: textSha256(text),
      bytes: Buffer.byteLength(text),
      chunkSize: 1000,
      chunkOverlap: 150,
      chunkCount: expected.length,
      uniqueChunks: new Set(expected.map((c) => c.text)).size,
      model: 'local-hash-384',
      dimensions: 384,
      includeEmbeddings: true,
      read: `/api/v1/jobs/${id}/chunks`,
    });

    for (const [offset, limit] of [
      [0, 700],
      [1990, 30],
      [expected.length - 5, 100],
    ] as const) {
      const res = await call('acme', 'GET', `/api/v1/jobs/${id}/chunks?offset=${offset}&limit=${limit}`);
      expect(res.statusCode, res.body.slice(0, 300)).toBe(200);
      const got = res.json() as { data: Array<{ index: number; text: string; hash: string; start: number; end: number; embedding: number[] }>; total: number; has_more: boolean };
      const want = expected.slice(offset, offset + limit);
      expect(got.total).toBe(expected.length);
      expect(got.has_more).toBe(offset + limit < expected.length);
      expect(got.data.map(({ index, text: t, start, end }) => ({ index, text: t, start, end }))).toEqual(want.map(({ index, text: t, start, end }) => ({ index, text: t, start, end })));
      expect(got.data.map((c) => c.hash)).toEqual(want.map((c) => textSha256(c.text)));
      expect(got.data.map((c) => c.embedding)).toEqual(await syncVectors(want.map((c) => c.text)));
    }
    expect((await call('globex', 'GET', `/api/v1/jobs/${id}/chunks`)).statusCode).toBe(404);
    // An embeddings job's pages are not a process job's, and the other way round.
    expect((await call('acme', 'GET', `/api/v1/jobs/${id}/embeddings`)).statusCode).toBe(404);
    expect(await keysMatching(`jobs:{${service}}:input:*`)).toEqual([]);
  }, 120_000);

  it('refuses bad input at submission', async () => {
    const overlap = await call('acme', 'POST', '/api/v1/jobs/process', { text: 'some text', chunkSize: 400, chunkOverlap: 300 });
    expect(overlap.statusCode).toBe(400);
    expect(overlap.json().message).toMatch(/chunkOverlap must be a whole number from 0 to chunkSize \/ 2 = 200/);
    const model = await call('acme', 'POST', '/api/v1/jobs/process', { text: 'some text', model: 'no-such-model' });
    expect(model.statusCode).toBe(400);
    expect((await call('acme', 'POST', '/api/v1/jobs/process', { text: '' })).statusCode).toBe(400);
    expect(await keysMatching(`jobs:{${service}}:input:*`)).toEqual([]);
  });
});

describe('the synchronous routes past their limits', () => {
  it('name the job route in their 413', async () => {
    const many = await call('acme', 'POST', '/api/v1/embeddings', { input: inputsOf(2049, 'sync').map((_, i) => `s${i}`) });
    expect(many.statusCode).toBe(413);
    expect(many.json().error.message).toMatch(/POST \/api\/v1\/jobs\/embeddings/);
    const body = await call('acme', 'POST', '/api/v1/embeddings', { input: ['z'.repeat(30_000), ...Array.from({ length: 40 }, () => 'z'.repeat(30_000))] });
    expect(body.statusCode).toBe(413);
    expect(body.json().error.message).toMatch(/POST \/api\/v1\/jobs\/embeddings/);
  });
});

describe('an evicting state Redis', () => {
  it('keeps embeddings served and answers the job routes 503 naming the policy', async () => {
    const lru = await startRedisServer({ args: ['--maxmemory', '64mb', '--maxmemory-policy', 'allkeys-lru'] });
    const other = await buildApp(configOf(lru.url, { AUTH_MODE: 'off', SERVICE_NAME: uniqueName('mmw-lru') }), {
      providers: [new LocalHashProvider()],
      logger: false,
      underPressure: false,
    });
    try {
      await other.ready();
      const res = await other.inject({ method: 'POST', url: '/api/v1/jobs/embeddings', payload: { input: ['a', 'b'] } });
      expect(res.statusCode).toBe(503);
      expect(res.json().message).toMatch(/maxmemory-policy allkeys-lru.*noeviction/);
      expect((await other.inject({ method: 'GET', url: '/api/v1/jobs' })).statusCode).toBe(503);
      expect((await other.inject({ method: 'GET', url: '/api/v1/jobs/embeddings-x/embeddings' })).statusCode).toBe(503);
      const sync = await other.inject({ method: 'POST', url: '/api/v1/embeddings', payload: { input: ['still served'] } });
      expect(sync.statusCode).toBe(200);
      expect(sync.json().data[0].embedding).toHaveLength(384);
    } finally {
      await other.close();
      await lru.stop();
    }
  }, 30_000);
});
