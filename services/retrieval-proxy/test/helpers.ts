import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, expect } from 'vitest';
import { getTestRedis, unlinkMatching, type TestRedis } from '@aicache/test-redis';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { ServiceApp } from '@aicache/service-kit';
import { buildApp, type BuildOverrides } from '../src/app.js';
import { loadConfig, type Config } from '../src/config.js';
import type { DocumentMeta } from '../src/domain/document-store.js';

export const ADMIN_TOKEN = 'test-admin-token';
export const DIMS = 64;

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Tiny deterministic embedder: hashed bag of words, so texts sharing words are close. */
export function embed(text: string): Float32Array {
  const v = new Float32Array(DIMS);
  for (const word of text.toLowerCase().match(/[a-z0-9]+/g) ?? []) {
    const h = fnv1a(word);
    v[h % DIMS] = (v[h % DIMS] ?? 0) + ((h >>> 16) & 1 ? 1 : -1);
  }
  return v;
}

export interface FakeWorker {
  url: string;
  app: FastifyInstance;
  /** Every POST /api/v1/embeddings body received. */
  calls: Array<{ input: string | string[]; encoding_format?: string; model?: string }>;
  /** The Authorization header of each of those calls ('' when there was none). */
  authorizations: string[];
  /** Answer embeddings as JSON numbers even when base64 was asked. */
  forceFloat: boolean;
  /** Answer 200 with a body that is not embeddings. */
  garbage: boolean;
  /** Wait this long before answering each embeddings call. */
  delayMs: number;
  close(): Promise<void>;
}

/** A real HTTP server speaking the worker's wire API (POST /api/v1/embeddings, GET /health). */
export async function startFakeWorker(): Promise<FakeWorker> {
  const app = Fastify({ logger: false, bodyLimit: 16 * 1024 * 1024 });
  const worker: FakeWorker = {
    url: '',
    app,
    calls: [],
    authorizations: [],
    forceFloat: false,
    garbage: false,
    delayMs: 0,
    close: () => app.close(),
  };
  app.get('/health', async () => ({ status: 'ok' }));
  app.post('/api/v1/embeddings', async (request) => {
    const body = request.body as { input: string | string[]; encoding_format?: 'float' | 'base64'; model?: string };
    worker.calls.push(body);
    worker.authorizations.push(request.headers.authorization ?? '');
    if (worker.delayMs > 0) await new Promise((r) => setTimeout(r, worker.delayMs));
    if (worker.garbage) return { data: 'nope' };
    const inputs = Array.isArray(body.input) ? body.input : [body.input];
    const base64 = body.encoding_format === 'base64' && !worker.forceFloat;
    return {
      object: 'list',
      data: inputs.map((text, index) => {
        const v = embed(text);
        return {
          object: 'embedding',
          index,
          embedding: base64 ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') : Array.from(v),
        };
      }),
      model: body.model ?? 'fake-bow-64',
      usage: { prompt_tokens: inputs.length, total_tokens: inputs.length },
    };
  });
  worker.url = await app.listen({ port: 0, host: '127.0.0.1' });
  return worker;
}

let shared: Promise<TestRedis> | undefined;
/** One Redis per test file (a REDIS_URL server, a container or a private redis-server). */
export function testRedis(): Promise<TestRedis> {
  shared ??= getTestRedis();
  return shared;
}

export function testConfig(redis: TestRedis, db: number, workerUrl: string, extra: Record<string, string> = {}): Config {
  return loadConfig({
    NODE_ENV: 'test',
    AUTH_MODE: 'off',
    LOG_LEVEL: 'silent',
    REDIS_URL: redis.url,
    REDIS_DB_RETRIEVAL_PROXY: String(db),
    MULTIMODAL_WORKER_URL: workerUrl,
    CACHE_ADMIN_TOKEN: ADMIN_TOKEN,
    PEER_TIMEOUT_MS: '2000',
    PEER_RETRIES: '1',
    // Housekeeping writes its own keys on a schedule (its first tick comes at boot): off unless a test asks for it.
    JOBS_HOUSEKEEPING_INTERVAL_MS: '0',
    ...extra,
  });
}

export async function makeApp(config: Config, overrides: BuildOverrides = {}) {
  const app = await buildApp(config, { logger: false, adminRateLimit: false, underPressure: false, ...overrides });
  await app.ready();
  return app;
}

/**
 * A user of `tenant` (role write) created through the auth routes with the admin token, and an API key of `scopes`
 * for that user: the key.
 */
export async function userKey(app: ServiceApp, username: string, tenant: string, scopes: string[] = ['write']): Promise<string> {
  const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
  const user = await app.inject({
    method: 'POST',
    url: '/api/v1/auth/users',
    headers: admin,
    payload: { username, password: 'correct horse battery staple', tenant, role: 'write' },
  });
  expect(user.statusCode, user.body).toBe(201);
  const key = await app.inject({ method: 'POST', url: '/api/v1/auth/keys', headers: admin, payload: { name: 'tests', scopes, userId: user.json().id } });
  expect(key.statusCode, key.body).toBe(201);
  return key.json().key as string;
}

/**
 * A proxy over a private redis-server with authentication on (users and keys on `authDb`), as the job tests run it:
 * one job at a time, the worker called once per request with a generous timeout.
 */
export function authedConfig(url: string, db: number, authDb: number, workerUrl: string, extra: Record<string, string> = {}): Config {
  return loadConfig({
    NODE_ENV: 'test',
    AUTH_MODE: 'on',
    LOG_LEVEL: 'silent',
    REDIS_URL: url,
    REDIS_DB_RETRIEVAL_PROXY: String(db),
    REDIS_DB_AUTH: String(authDb),
    MULTIMODAL_WORKER_URL: workerUrl,
    CACHE_ADMIN_TOKEN: ADMIN_TOKEN,
    PEER_TIMEOUT_MS: '5000',
    PEER_RETRIES: '0',
    JOBS_CONCURRENCY: '1',
    ...extra,
  });
}

/** A plain client on the test DB for looking at keys directly. */
export function rawClient(redis: TestRedis, db: number): Redis {
  return new Redis(redis.url, { db, lazyConnect: false, maxRetriesPerRequest: 1 });
}

/**
 * Removes this file's documents and cache entries between tests (never FLUSHDB: the server may be
 * shared). The corpus version is bumped, not deleted, as an operator removing documents by hand would
 * have to, so running apps reload their in-memory index.
 */
export async function wipe(client: Redis): Promise<number> {
  // The active model goes too: an emptied index takes the model of its next first ingest.
  await unlinkMatching(
    client,
    'retrieval-proxy:*',
    'state:retrieval-proxy:doc*',
    'state:retrieval-proxy:t:*',
    'state:retrieval-proxy:tenants',
    'state:retrieval-proxy:corpus_model',
    'state:retrieval-proxy:corpus_generation',
    'state:retrieval-proxy:reembed*',
  );
  return client.incr('state:retrieval-proxy:corpus_version');
}

export const docs = {
  refunds: {
    id: 'refund-policy',
    title: 'Refund policy',
    text:
      'Customers can ask for a refund within 30 days of purchase. Refunds are paid back to the original payment method. ' +
      'Digital goods are refundable only when they were not downloaded.',
    source: 'handbook/refunds.md',
    metadata: { lang: 'en', team: 'billing', tags: ['policy', 'money'], version: 2 },
  },
  shipping: {
    id: 'shipping',
    title: 'Shipping times',
    text: 'Orders ship within two business days. International shipping takes one to three weeks depending on customs.',
    source: 'handbook/shipping.md',
    metadata: { lang: 'en', team: 'logistics', tags: ['policy'], version: 1 },
  },
  german: {
    id: 'rueckgabe',
    title: 'Rückgabe',
    text: 'Eine Rückerstattung (refund) ist innerhalb von 30 Tagen möglich.',
    metadata: { lang: 'de', team: 'billing', version: 1 },
  },
};

/** What a route test file works with: its own DB, a fake worker, and the app on both. */
export interface ProxyFixture {
  redis: TestRedis;
  raw: Redis;
  worker: FakeWorker;
  app: ServiceApp;
}

async function startFixture(db: number): Promise<ProxyFixture> {
  const redis = await testRedis();
  const raw = rawClient(redis, db);
  const worker = await startFakeWorker();
  const app = await makeApp(testConfig(redis, db, worker.url));
  return { redis, raw, worker, app };
}

async function stopFixture(f: Partial<ProxyFixture>): Promise<void> {
  await f.app?.close();
  await f.worker?.close();
  f.raw?.disconnect();
  await f.redis?.stop();
}

/**
 * The fixture for the enclosing file: started before its tests, stopped after them. Read its fields
 * inside tests and hooks (they are filled in when the fixture starts).
 */
export function useFixture(db: number): ProxyFixture {
  const f = {} as ProxyFixture;
  beforeAll(async () => {
    Object.assign(f, await startFixture(db));
  });
  afterAll(() => stopFixture(f));
  return f;
}

/** One statement on a connection of its own (the pgvector tests' look at what the engine wrote). */
export async function pgQuery<T extends pg.QueryResultRow>(url: string, text: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(text, params)).rows;
  } finally {
    await c.end();
  }
}

/** A document's record for the domain-level tests: `chunkCount` chunks embedded with the fake model. */
export function fakeDocMeta(id: string, chunkCount: number, contentHash = id): DocumentMeta {
  return {
    id,
    title: id,
    metadata: {},
    createdAt: new Date().toISOString(),
    chunkCount,
    contentHash,
    model: 'fake-bow-64',
    dimensions: DIMS,
    chunkSize: 800,
    chunkOverlap: 100,
  };
}
