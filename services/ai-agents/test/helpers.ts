import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll } from 'vitest';
import { ContextRequest, type ContextResponse } from '@aicache/contracts';
import { Redis } from 'ioredis';
import { getTestRedis, unlinkMatching, type TestRedis } from '@aicache/test-redis';
import { loadConfig } from '@aicache/service-kit';
import { buildApp, type BuildOverrides } from '../src/app.js';
import { ConfigSchema, type Config } from '../src/config.js';

export const SECTIONS = [
  {
    documentId: 'doc-persistence',
    title: 'Redis persistence',
    chunkIndex: 0,
    text:
      'Redis offers two persistence options. The append only file (AOF) logs every write operation received by the server. ' +
      'RDB persistence takes point-in-time snapshots of the dataset at specified intervals.',
    score: 0.91,
  },
  {
    documentId: 'doc-eviction',
    title: 'Eviction policies',
    chunkIndex: 2,
    text:
      'The allkeys-lru policy evicts the least recently used keys when memory is full. ' +
      'The noeviction policy returns errors on writes when the memory limit is reached.',
    score: 0.74,
  },
];

export interface ContextCall {
  body: ContextRequest;
  requestId: string | undefined;
  /** Every header of the call, to see whom it said it acts for. */
  headers: Record<string, string | string[] | undefined>;
}

export interface FakeProxy {
  url: string;
  calls: ContextCall[];
  app: FastifyInstance;
  /** Holds every context answer until the returned function is called. */
  hold(): () => void;
  close(): Promise<void>;
}

/**
 * A real HTTP server speaking retrieval-proxy's POST /api/v1/context and GET /health, with the proxy's own request
 * schema from the contract (strict, as the proxy validates: no coercion, unknown fields refused), so a request the
 * proxy would refuse is refused here too (400, which ai-agents reports as 502).
 */
export async function startFakeProxy(): Promise<FakeProxy> {
  const app = Fastify({ logger: false, ajv: { customOptions: { coerceTypes: false, removeAdditional: false } } });
  const calls: ContextCall[] = [];
  let gate: Promise<void> | undefined;
  app.get('/health', async () => ({ status: 'ok' }));
  app.post<{ Body: ContextRequest }>('/api/v1/context', { schema: { body: ContextRequest } }, async (req) => {
    const body = req.body;
    const header = req.headers['x-request-id'];
    calls.push({ body, requestId: typeof header === 'string' ? header : undefined, headers: { ...req.headers } });
    if (gate) await gate;
    const sections = /unrelated gibberish/i.test(body.query) ? [] : SECTIONS.slice(0, body.limit ?? 5);
    return {
      query: body.query,
      sections: sections.map((s, i) => ({
        citation: { id: i + 1, documentId: s.documentId, title: s.title, source: `docs/${s.documentId}.md`, chunkIndex: s.chunkIndex },
        text: s.text,
        score: s.score,
      })),
      text: sections.map((s, i) => `[${i + 1}] ${s.text}`).join('\n\n'),
      truncated: false,
    } satisfies ContextResponse;
  });
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  const hold = () => {
    let release = () => undefined as void;
    gate = new Promise<void>((resolve) => (release = resolve));
    return () => {
      gate = undefined;
      release();
    };
  };
  return { url: address, calls, app, hold, close: () => app.close() };
}

/** A URL nothing listens on: a port taken from a server that was then closed. */
export async function deadUrl(): Promise<string> {
  const app = Fastify({ logger: false });
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  await app.close();
  return address;
}

export function testConfig(redisUrl: string, db: number, extra: Record<string, string> = {}): Config {
  return loadConfig(ConfigSchema, {
    env: {
      NODE_ENV: 'test',
      AUTH_MODE: 'off',
      LOG_LEVEL: 'silent',
      REDIS_URL: redisUrl,
      REDIS_DB_AI_AGENTS: String(db),
      RETRIEVAL_PROXY_URL: 'http://127.0.0.1:1',
      PEER_TIMEOUT_MS: '2000',
      ...extra,
    },
  });
}

/** A plain client on the test DB, to look at what the service stored. */
export function rawClient(redisUrl: string, db: number): Redis {
  return new Redis(`${redisUrl}/${db}`, { lazyConnect: false, maxRetriesPerRequest: 1 });
}

/** Removes every key of this service in the test DB (state and cache), by SCAN, never FLUSHDB. */
export async function wipe(redis: Redis): Promise<void> {
  await unlinkMatching(redis, 'state:ai-agents:*', 'ai-agents:*');
}

export const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';

/**
 * buildApp without under-pressure: on a shared two-core test machine a busy moment can pass its
 * event-loop limit and turn unrelated requests into 503s.
 */
export function build(config: Config, overrides: BuildOverrides = {}) {
  return buildApp(config, { underPressure: false, ...overrides });
}

/** What a test file works with: a Redis (its own DB, wiped), a fake proxy, and the app on both. */
export interface AgentsFixture {
  redis: TestRedis;
  raw: Redis;
  proxy: FakeProxy;
  app: Awaited<ReturnType<typeof build>>;
}

export interface FixtureOptions {
  /** Extra env for the app's config; a function is read when the fixture starts (after outer hooks ran). */
  env?: Record<string, string> | (() => Record<string, string>);
  overrides?: BuildOverrides;
}

async function startFixture(db: number, opts: FixtureOptions): Promise<AgentsFixture> {
  const redis = await getTestRedis();
  const raw = rawClient(redis.url, db);
  await wipe(raw);
  const proxy = await startFakeProxy();
  const env = typeof opts.env === 'function' ? opts.env() : opts.env;
  const app = await build(testConfig(redis.url, db, { RETRIEVAL_PROXY_URL: proxy.url, ...env }), opts.overrides);
  return { redis, raw, proxy, app };
}

async function stopFixture(f: Partial<AgentsFixture>): Promise<void> {
  await f.app?.close();
  await f.proxy?.close();
  f.raw?.disconnect();
  await f.redis?.stop();
}

/**
 * The fixture for the enclosing file or describe: started before its tests, stopped after them. Read its
 * fields inside tests and hooks (they are filled in when the fixture starts).
 */
export function useFixture(db: number, opts: FixtureOptions = {}): AgentsFixture {
  const f = {} as AgentsFixture;
  beforeAll(async () => {
    Object.assign(f, await startFixture(db, opts));
  });
  afterAll(() => stopFixture(f));
  return f;
}
