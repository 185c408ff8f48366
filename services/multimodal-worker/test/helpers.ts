import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, expect } from 'vitest';
import { buildApp } from '../src/app.js';
import { LocalHashProvider } from '../src/providers/local-hash.js';
import { Redis } from 'ioredis';
import { freePort, getTestRedis, uniqueName, type TestRedis } from '@aicache/test-redis';
import { loadConfig, type Config } from '../src/config.js';
import { hashEmbed } from '../src/providers/local-hash.js';
import type { EmbeddingProvider, ModelMetadata } from '../src/providers/types.js';

export const ADMIN_TOKEN = 'test-admin-token-0123456789';

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/**
 * A user of `tenant` with the read role and a read key of theirs, made with the admin token (authentication on).
 * A read key: embedding changes no one's data, in a job as in the synchronous routes.
 */
export async function readKey(app: FastifyInstance, username: string, tenant: string): Promise<string> {
  const user = await app.inject({
    method: 'POST',
    url: '/api/v1/auth/users',
    headers: bearer(ADMIN_TOKEN),
    payload: { username, password: 'correct horse battery staple', tenant, role: 'read' },
  });
  expect(user.statusCode, user.body).toBe(201);
  const key = await app.inject({ method: 'POST', url: '/api/v1/auth/keys', headers: bearer(ADMIN_TOKEN), payload: { name: username, scopes: ['read'], userId: user.json().id } });
  expect(key.statusCode, key.body).toBe(201);
  return key.json().key as string;
}

export interface TestEnv {
  redis: TestRedis;
  /** A plain client on the test's DB, to look at what the service stored. */
  inspect: Redis;
  config: Config;
  close(): Promise<void>;
}

/** A config on its own DB index and service name, pointing at the test Redis. */
export async function testEnv(db: number, extra: Record<string, string> = {}): Promise<TestEnv> {
  const redis = await getTestRedis();
  const config = loadConfig({
    NODE_ENV: 'test',
    AUTH_MODE: 'off',
    LOG_LEVEL: 'silent',
    REDIS_URL: redis.url,
    REDIS_DB_MULTIMODAL_WORKER: String(db),
    SERVICE_NAME: uniqueName('mmw'),
    CACHE_ADMIN_TOKEN: ADMIN_TOKEN,
    // The 250 ms default turns a slow command on a busy CI machine into a miss; these tests assert hits.
    CACHE_COMMAND_TIMEOUT_MS: '5000',
    ...extra,
  });
  const inspect = new Redis(redis.url, { db, lazyConnect: false, maxRetriesPerRequest: 1 });
  return {
    redis,
    inspect,
    config,
    close: async () => {
      inspect.disconnect();
      await redis.stop();
    },
  };
}

/** Wraps a provider and records every embed() call, to count what really reached the model. */
export class CountingProvider implements EmbeddingProvider {
  readonly calls: string[][] = [];
  constructor(private readonly inner: EmbeddingProvider) {}
  get id() {
    return this.inner.id;
  }
  get dimensions() {
    return this.inner.dimensions;
  }
  async embed(texts: string[]): Promise<Float32Array[]> {
    this.calls.push([...texts]);
    return this.inner.embed(texts);
  }
  describe(): ModelMetadata {
    return this.inner.describe();
  }
  /** Texts embedded so far, over all calls. */
  get computed(): number {
    return this.calls.reduce((n, c) => n + c.length, 0);
  }
  reset(): void {
    this.calls.length = 0;
  }
}

/** What a route test file works with: its own DB and service name, and the worker on it. */
export interface WorkerFixture {
  env: TestEnv;
  app: FastifyInstance;
  /** The built-in model, counted: what reached it since the last reset(). */
  provider: CountingProvider;
  close(): Promise<void>;
}

/** The worker on its own DB, serving the built-in model through a CountingProvider, quiet and without load shedding. */
async function startFixture(db: number): Promise<WorkerFixture> {
  const env = await testEnv(db);
  const provider = new CountingProvider(new LocalHashProvider());
  const app = await buildApp(env.config, { providers: [provider], logger: false, underPressure: false, adminRateLimit: false });
  return {
    env,
    app,
    provider,
    close: async () => {
      await app.close();
      await env.close();
    },
  };
}

/**
 * The fixture for the enclosing file: started before its tests, closed after them. Read its fields
 * inside tests and hooks (they are filled in when the fixture starts).
 */
export function useFixture(db: number): WorkerFixture {
  const f = {} as WorkerFixture;
  beforeAll(async () => {
    Object.assign(f, await startFixture(db));
  });
  afterAll(() => f.close?.());
  return f;
}

export type Part =
  | { name: string; value: string }
  | { name: string; filename: string; contentType: string; content: string | Buffer };

/** A multipart/form-data body as a browser or curl would send it. */
export function multipartBody(parts: Part[]): { payload: Buffer; headers: Record<string, string> } {
  const boundary = `----test${randomBytes(8).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const p of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\n`));
    if ('filename' in p) {
      chunks.push(Buffer.from(`Content-Disposition: form-data; name="${p.name}"; filename="${p.filename}"\r\nContent-Type: ${p.contentType}\r\n\r\n`));
      chunks.push(Buffer.isBuffer(p.content) ? p.content : Buffer.from(p.content));
    } else {
      chunks.push(Buffer.from(`Content-Disposition: form-data; name="${p.name}"\r\n\r\n${p.value}`));
    }
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(chunks), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

export type FakeMode = 'ok' | 'malformed' | 'wrong-count' | 'wrong-dims' | 'unauthorized' | 'overloaded' | 'not-json';

export interface FakeOpenAI {
  url: string;
  app: FastifyInstance;
  /** Every POST /embeddings: the Authorization header and the inputs. */
  requests: Array<{ authorization: string | undefined; model: unknown; input: string[] }>;
  mode: FakeMode;
  close(): Promise<void>;
}

/**
 * A real HTTP server that speaks the OpenAI embeddings API (POST /v1/embeddings, GET /v1/models/:id).
 * Vectors are hashEmbed(text, dims) so answers are checkable; data comes back in reverse order with
 * indices, as servers are allowed to.
 */
export async function startFakeOpenAI(opts: { dims?: number; model?: string } = {}): Promise<FakeOpenAI> {
  const dims = opts.dims ?? 8;
  const app = Fastify({ logger: false, bodyLimit: 64 * 1024 * 1024 });
  const fake: FakeOpenAI = {
    url: '',
    app,
    requests: [],
    mode: 'ok',
    close: () => app.close(),
  };
  app.post('/v1/embeddings', async (req, reply) => {
    const body = req.body as { model: unknown; input: string[] };
    fake.requests.push({ authorization: req.headers.authorization, model: body.model, input: body.input });
    if (fake.mode === 'unauthorized') return reply.code(401).send({ error: { message: 'Incorrect API key provided', type: 'invalid_request_error' } });
    if (fake.mode === 'overloaded') return reply.code(503).send({ error: { message: 'model is loading' } });
    if (fake.mode === 'not-json') return reply.type('text/html').send('<html>gateway</html>');
    if (fake.mode === 'malformed') return { object: 'list', data: body.input.map((_, index) => ({ object: 'embedding', index, embedding: 'oops' })) };
    const inputs = fake.mode === 'wrong-count' ? body.input.slice(1) : body.input;
    const size = fake.mode === 'wrong-dims' ? dims + 1 : dims;
    const data = inputs.map((text, index) => ({ object: 'embedding', index, embedding: Array.from(hashEmbed(text, size)) })).reverse();
    return { object: 'list', data, model: body.model, usage: { prompt_tokens: 1, total_tokens: 1 } };
  });
  app.get('/v1/models/*', async (req, reply) => {
    const id = (req.params as { '*': string })['*'];
    if (opts.model && id !== opts.model) return reply.code(404).send({ error: { message: 'no such model' } });
    return { id, object: 'model', created: 1_700_000_000, owned_by: 'fake-lab' };
  });
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  fake.url = `${address}/v1`;
  return fake;
}

export interface WorkerProcess {
  url: string;
  /** stdout + stderr so far. */
  output(): string;
  stop(): Promise<void>;
  /** SIGKILL: the process dies at once, as in a crash (nothing closed, no lock released). */
  kill(): Promise<void>;
}

/** The built worker (dist/server.js) as its own process, as it runs in production, listening on a free port. */
export async function startWorkerProcess(env: Record<string, string>): Promise<WorkerProcess> {
  const script = fileURLToPath(new URL('../dist/server.js', import.meta.url));
  if (!existsSync(script)) throw new Error(`${script} is missing: build the worker first`);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let output = '';
  const child = spawn(process.execPath, [script], { env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: String(port), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the worker exited with code ${child.exitCode}:\n${output}`);
    const ok = await fetch(`${url}/ready`).then((r) => r.ok, () => false);
    if (ok) return { url, output: () => output, stop, kill };
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`the worker was not ready within 30 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
