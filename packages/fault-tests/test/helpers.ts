import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance } from 'fastify';
import { Pool } from 'undici';
import type { ContextResponse } from '@aicache/contracts';
import { loadConfig as kitLoadConfig } from '@aicache/service-kit';
import { startRedisServer, type RedisServer, type RedisServerOptions } from '@aicache/test-redis';
import { buildApp as buildWorker } from '@aicache/multimodal-worker/dist/app.js';
import { loadConfig as workerConfig } from '@aicache/multimodal-worker/dist/config.js';
import { buildApp as buildProxy } from '@aicache/retrieval-proxy/dist/app.js';
import { loadConfig as proxyConfig } from '@aicache/retrieval-proxy/dist/config.js';
import { buildApp as buildAgents } from '@aicache/ai-agents/dist/app.js';
import { ConfigSchema as AgentsSchema } from '@aicache/ai-agents/dist/config.js';
import { sleep } from '../src/index.js';

export { buildWorker, buildProxy, buildAgents };

export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const ADMIN_TOKEN = 'fault-tests-admin-token-5f0c2e9a';
/** The cache command timeout under test: the services' default. */
export const COMMAND_TIMEOUT_MS = 250;

export type Env = Record<string, string>;

const base = (extra: Env): Env => ({
  NODE_ENV: 'test',
  LOG_LEVEL: 'silent',
  // These tests are about Redis faults; authentication has its own tests (and security.test.ts runs with it on).
  AUTH_MODE: 'off',
  CACHE_ADMIN_TOKEN: ADMIN_TOKEN,
  CACHE_COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS),
  ...extra,
});

export const workerCfg = (extra: Env) => workerConfig(base(extra));
export const proxyCfg = (extra: Env) => proxyConfig(base(extra));
export const agentsCfg = (extra: Env) => kitLoadConfig(AgentsSchema, { env: base(extra) });

/** Private redis-servers of one test file, all stopped in afterAll. */
export class Servers {
  private readonly list: RedisServer[] = [];
  async start(opts: RedisServerOptions = {}): Promise<RedisServer> {
    const s = await startRedisServer(opts);
    this.list.push(s);
    return s;
  }
  async stopAll(): Promise<void> {
    await Promise.all(this.list.map((s) => s.stop().catch(() => undefined)));
    this.list.length = 0;
  }
}

/** Listens on 127.0.0.1:0 and answers the base URL. */
export async function listen(app: FastifyInstance): Promise<string> {
  return app.listen({ port: 0, host: '127.0.0.1' });
}

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json<T = unknown>(): T;
}

/** A small HTTP client for one origin (undici Pool); a request that hangs fails after `timeoutMs`. */
export class Http {
  readonly pool: Pool;
  /** Sent with every call unless the call names the header itself (e.g. an API key). */
  defaultHeaders: Record<string, string> = {};
  constructor(
    readonly origin: string,
    readonly timeoutMs = 15_000,
  ) {
    this.pool = new Pool(origin, { connections: 64, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, keepAliveTimeout: 10_000 });
  }

  async call(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown, headers: Record<string, string> = {}): Promise<HttpAnswer> {
    const res = await this.pool.request({
      method,
      path,
      headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...this.defaultHeaders, ...headers },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    const text = await res.body.text();
    return {
      status: res.statusCode,
      headers: res.headers,
      text,
      json: <T>() => JSON.parse(text) as T,
    };
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

/** Polls `fn` until it answers true; false after `timeoutMs` (hang detector, never a speed assertion). */
export async function until(fn: () => Promise<boolean> | boolean, timeoutMs: number, everyMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await fn()) return true;
    } catch {
      // keep polling
    }
    if (Date.now() >= deadline) return false;
    await sleep(everyMs);
  }
}

/** A stand-in retrieval-proxy: POST /api/v1/context and GET /health. */
export async function startFakeProxy(): Promise<{ url: string; calls: number; close(): Promise<void> }> {
  const app = Fastify({ logger: false });
  const state = { url: '', calls: 0, close: () => app.close() };
  app.get('/health', async () => ({ status: 'ok' }));
  app.post('/api/v1/context', async (req) => {
    state.calls++;
    const query = String((req.body as { query?: unknown }).query ?? '');
    const section = {
      documentId: 'doc-aof',
      title: 'AOF',
      chunkIndex: 0,
      text: 'Redis appends every write to the append only file; appendfsync decides how often it is flushed to disk.',
      score: 0.9,
    };
    return {
      query,
      sections: [{ citation: { id: 1, documentId: section.documentId, title: section.title, chunkIndex: 0 }, text: section.text, score: section.score }],
      text: `[1] ${section.text}`,
      truncated: false,
    } satisfies ContextResponse;
  });
  state.url = await app.listen({ port: 0, host: '127.0.0.1' });
  return state;
}

export type ServiceName = 'multimodal-worker' | 'retrieval-proxy' | 'ai-agents';

/** One service as `node services/<name>/dist/server.js`, stdout and stderr kept. */
export class ServiceProcess {
  output = '';
  private child: ChildProcess | undefined;
  readonly url: string;
  constructor(
    readonly name: ServiceName,
    readonly port: number,
    private readonly env: Env,
  ) {
    this.url = `http://127.0.0.1:${port}`;
  }

  /** Starts the process and waits until /health answers (not /ready: a degraded or unready service is fine here). */
  async start(): Promise<void> {
    const script = `${REPO}services/${this.name}/dist/server.js`;
    if (!existsSync(script)) throw new Error(`${script} is missing: build the service first`);
    const child = spawn(process.execPath, [script], {
      cwd: REPO,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', HOST: '127.0.0.1', PORT: String(this.port), ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (this.output += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (this.output += d));
    const up = await until(async () => {
      if (child.exitCode !== null) throw new Error('exited');
      const res = await fetch(`${this.url}/health`, { signal: AbortSignal.timeout(1000) });
      return res.status === 200;
    }, 30_000, 100);
    if (!up || child.exitCode !== null) throw new Error(`${this.name} did not come up (exit ${child.exitCode}):\n${this.output.slice(-3000)}`);
  }

  get exited(): boolean {
    return !this.child || this.child.exitCode !== null || this.child.signalCode !== null;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || this.exited) return;
    const gone = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(timer);
  }
}
