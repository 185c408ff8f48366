import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { startRedisServer, uniqueName, waitFor, type RedisServer } from '@aicache/test-redis';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { LocalHashProvider } from '../src/providers/local-hash.js';
import { ADMIN_TOKEN, bearer, CountingProvider, readKey } from './helpers.js';

/**
 * EMBEDDINGS_INPUTS_PER_MINUTE holds on every way the worker embeds for a credential: the synchronous embeddings
 * route, the process routes (the distinct chunks they embed) and the background jobs (each batch, the job waiting
 * while the budget is spent). On a private redis-server with authentication on; the budget is small (300 a minute)
 * so that it is reached at once.
 */
const CACHE_DB = 1;
const AUTH_DB = 2;
const BUDGET = 300;

let server: RedisServer;
let raw: Redis;
let app: FastifyInstance;
let service = '';
const provider = new CountingProvider(new LocalHashProvider());
const keys = { acme: '', globex: '' };

type As = keyof typeof keys;
const call = (as: As, method: 'GET' | 'POST', url: string, payload?: object) =>
  app.inject({ method, url, headers: bearer(keys[as]), ...(payload ? { payload } : {}) });
const jobOf = async (as: As, id: string) => (await call(as, 'GET', `/api/v1/jobs/${id}`)).json();
const inputsOf = (n: number, tag: string) => Array.from({ length: n }, (_, i) => `${tag} ${i}: the parcel left depot ${i % 9} on day ${i}`);


/** The inputs-per-minute counters rate-limiter-flexible keeps in Redis (one per credential with a window open). */
async function budgetKeys(): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await raw.scan(cursor, 'MATCH', '*rl:inputs*', 'COUNT', 1000);
    found.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return found;
}
const spent = async (): Promise<number> => {
  let total = 0;
  for (const k of await budgetKeys()) total += Number((await raw.get(k)) ?? 0);
  return total;
};
/** What a minute's passing does to the budget: the counters' windows end. */
const newMinute = async (): Promise<void> => {
  const found = await budgetKeys();
  if (found.length > 0) await raw.del(...found);
};

beforeAll(async () => {
  server = await startRedisServer({ args: ['--maxmemory-policy', 'noeviction'] });
  raw = new Redis(server.url, { db: AUTH_DB });
  service = uniqueName('mmw-budget');
  const config = loadConfig({
    NODE_ENV: 'test',
    AUTH_MODE: 'on',
    LOG_LEVEL: 'silent',
    REDIS_URL: server.url,
    REDIS_DB_MULTIMODAL_WORKER: String(CACHE_DB),
    REDIS_DB_AUTH: String(AUTH_DB),
    SERVICE_NAME: service,
    CACHE_ADMIN_TOKEN: ADMIN_TOKEN,
    CACHE_COMMAND_TIMEOUT_MS: '5000',
    EMBEDDINGS_INPUTS_PER_MINUTE: String(BUDGET),
    JOBS_CONCURRENCY: '1',
  });
  app = await buildApp(config, { providers: [provider], logger: false, underPressure: false, adminRateLimit: false });
  await app.ready();
  keys.acme = await readKey(app, 'acme-budget', 'acme');
  keys.globex = await readKey(app, 'globex-budget', 'globex');
}, 60_000);

afterAll(async () => {
  await app?.close();
  raw?.disconnect();
  await server?.stop();
});

describe('an embeddings job', () => {
  it("spends its batches from the starting credential's budget, waits (delayed, its slot free) when it is spent, and resumes after the stored batches", async () => {
    await newMinute();
    provider.reset();
    const start = await call('acme', 'POST', '/api/v1/jobs/embeddings', { input: inputsOf(500, 'budget'), batchSize: 100 });
    expect(start.statusCode, start.body).toBe(202);
    const id = start.json().id as string;

    // Three batches fit the 300; the fourth waits for the next window.
    const waiting = await waitFor('the job to wait for the budget', async () => {
      const job = await jobOf('acme', id);
      return job.state === 'delayed' ? job : undefined;
    }, 30_000);
    expect(waiting.progress).toMatchObject({ current: 300, total: 500 });
    expect(provider.computed).toBe(300);
    expect(await spent()).toBe(300);

    // The job spent the same budget as the synchronous route: acme has nothing left this minute...
    const sync = await call('acme', 'POST', '/api/v1/embeddings', { input: ['one more'] });
    expect(sync.statusCode).toBe(429);
    expect(Number(sync.headers['retry-after'])).toBeGreaterThan(0);
    expect(sync.json().error.message).toMatch(/^Embedding inputs per minute used up for this credential: try again in \d+ s$/);
    // ...while another credential's job runs to the end in the slot the waiting job left (concurrency 1).
    const other = await call('globex', 'POST', '/api/v1/jobs/embeddings', { input: inputsOf(100, 'other'), batchSize: 100 });
    expect(other.statusCode).toBe(202);
    await waitFor('the other job to complete', async () => ((await jobOf('globex', other.json().id)).state === 'completed' ? true : undefined), 30_000);
    expect((await jobOf('acme', id)).state).toBe('delayed');

    // Once the window has passed, the job goes on from where it was: only the last 200 inputs reach the model.
    await newMinute();
    const queue = new Queue('jobs', { connection: { host: '127.0.0.1', port: server.port, db: AUTH_DB }, prefix: `jobs:{${service}}` });
    await (await queue.getJob(id))!.promote();
    await queue.close();
    const done = await waitFor('the job to complete', async () => {
      const job = await jobOf('acme', id);
      return job.state === 'completed' ? job : undefined;
    }, 30_000);
    expect(done.progress).toMatchObject({ current: 500, total: 500 });
    expect(done.result).toMatchObject({ inputs: 500, resumedFrom: 300, computed: 200 });
    expect(done.attempts ?? 1).toBeLessThanOrEqual(1);
    expect(provider.computed).toBe(100 + 500);
  }, 90_000);

  it('with a batch larger than the whole budget fails at once, saying which batchSize fits', async () => {
    await newMinute();
    const start = await call('acme', 'POST', '/api/v1/jobs/embeddings', { input: inputsOf(400, 'large'), batchSize: 400 });
    expect(start.statusCode).toBe(202);
    const failed = await waitFor('the job to fail', async () => {
      const job = await jobOf('acme', start.json().id);
      return job.state === 'failed' ? job : undefined;
    }, 30_000);
    expect(JSON.stringify(failed)).toContain(`a batch of 400 inputs is more than the ${BUDGET} allowed per minute (EMBEDDINGS_INPUTS_PER_MINUTE): submit the job with batchSize at most ${BUDGET}`);
    expect(await spent()).toBe(0);
  }, 60_000);
});

describe('the process routes', () => {
  // 40 distinct paragraphs of ~230 characters: 40 chunks of at most 300 characters.
  const text = Array.from({ length: 40 }, (_, i) => `Section ${i}. ` + `The returns desk in hall ${i} opens at nine and closes at five; bring the order number. `.repeat(2)).join('\n\n');

  it('spend the distinct chunks a miss embeds, refuse (429) what the budget cannot take with nothing embedded, and spend nothing on a hit', async () => {
    await newMinute();
    provider.reset();
    // Most of the minute's budget gone first.
    expect((await call('acme', 'POST', '/api/v1/embeddings', { input: inputsOf(280, 'first') })).statusCode).toBe(200);
    const before = provider.computed;
    const refused = await call('acme', 'POST', '/api/v1/process/text', { text, chunkSize: 300, chunkOverlap: 0 });
    expect(refused.statusCode, refused.body).toBe(429);
    expect(refused.json().message).toMatch(/^Embedding inputs per minute used up for this credential/);
    expect(provider.computed).toBe(before);

    await newMinute();
    const miss = await call('acme', 'POST', '/api/v1/process/text', { text, chunkSize: 300, chunkOverlap: 0 });
    expect(miss.statusCode, miss.body.slice(0, 300)).toBe(200);
    expect(miss.headers['x-cache']).toBe('miss');
    const unique = miss.json().uniqueChunks as number;
    expect(unique).toBeGreaterThanOrEqual(40);
    expect(await spent()).toBe(unique);

    const hit = await call('acme', 'POST', '/api/v1/process/text', { text, chunkSize: 300, chunkOverlap: 0 });
    expect(hit.headers['x-cache']).toBe('hit');
    expect(await spent()).toBe(unique);
  });
});
