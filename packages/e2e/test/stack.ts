import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { freePort, startRedisServer, type RedisServer } from '@aicache/test-redis';

export const SERVICES = ['multimodal-worker', 'retrieval-proxy', 'ai-agents'] as const;
export type ServiceName = (typeof SERVICES)[number];

/** Cache DB of each service, as in production. */
export const DB: Record<ServiceName, number> = { 'multimodal-worker': 0, 'retrieval-proxy': 1, 'ai-agents': 2 };

const REPO = fileURLToPath(new URL('../../../', import.meta.url));

export function serverScript(name: ServiceName): string {
  return `${REPO}services/${name}/dist/server.js`;
}

/** One service running as `node services/<name>/dist/server.js`. */
export class ServiceProcess {
  readonly url: string;
  /** stdout + stderr of every run of this service, in order. */
  output = '';
  /** How the last run ended: exit code, or the signal that killed it. */
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  constructor(
    readonly name: ServiceName,
    readonly port: number,
    private readonly env: Record<string, string>,
    private readonly cwd: string,
  ) {
    this.url = `http://127.0.0.1:${port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  async start(): Promise<void> {
    const script = serverScript(this.name);
    if (!existsSync(script)) throw new Error(`${script} is missing: build it first (pnpm --filter @aicache/${this.name} build)`);
    const child = spawn(process.execPath, [script], { cwd: this.cwd, env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (this.output += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (this.output += d));
    this.exit = undefined;
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve();
      }),
    );
    await this.waitReady(child);
  }

  private async waitReady(child: ChildProcess): Promise<void> {
    const deadline = Date.now() + 60_000;
    let last = 'no answer';
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`${this.name} exited (code ${child.exitCode}, signal ${child.signalCode}) before /ready:\n${this.tail()}`);
      }
      try {
        const res = await fetch(`${this.url}/ready`, { signal: AbortSignal.timeout(2000) });
        const body = await res.text();
        if (res.status === 200) return;
        last = `${res.status} ${body}`;
      } catch (err) {
        last = (err as Error).message;
      }
      await new Promise((r) => setTimeout(r, 150));
    }
    throw new Error(`${this.name} not ready within 60 s (last: ${last}):\n${this.tail()}`);
  }

  /** SIGTERM (graceful close), SIGKILL if it is still there after 15 s. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await this.exited;
    clearTimeout(timer);
  }

  /** Resolves when the current run has ended. */
  waitExit(): Promise<void> {
    return this.exited;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  tail(chars = 4000): string {
    return this.output.slice(-chars);
  }
}

export interface Principal {
  userId: string;
  username: string;
  tenant: string;
  /** An API key of the user with the scopes asked for. */
  key: string;
  keyId: string;
  password: string;
}

export interface Stack {
  redis: RedisServer;
  /** The bootstrap admin token (CACHE_ADMIN_TOKEN). */
  token: string;
  /** The user `call` acts for when a request names no Authorization (tenant `e2e`, scope write). */
  user: Principal;
  /** A new user (tenant, role = the highest scope asked) with an API key of those scopes, made with the admin token. */
  principal(tenant: string, scopes?: Array<'read' | 'write' | 'admin'>): Promise<Principal>;
  worker: ServiceProcess;
  proxy: ServiceProcess;
  agents: ServiceProcess;
  byName: Record<ServiceName, ServiceProcess>;
  /** A direct client on one DB of the stack's Redis (closed by stop()). */
  db(index: number): Redis;
  /** Another instance of a service on a free port, with the stack's env plus `env`; stopped by stop(). */
  another(name: ServiceName, env: Record<string, string>): Promise<ServiceProcess>;
  stop(): Promise<void>;
}

export interface StackOptions {
  /** Extra env per service (e.g. LOG_LEVEL). */
  env?: Partial<Record<ServiceName, Record<string, string>>>;
}

/**
 * A private redis-server (AOF everysec, as in production) and the three services as real processes on
 * free ports, peers wired to each other, started in dependency order and each waited for on /ready.
 */
export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const redis = await startRedisServer({ appendfsync: 'everysec' });
  const token = `e2e-${randomBytes(16).toString('hex')}`;
  const ports = { worker: await freePort(), proxy: await freePort(), agents: await freePort() };
  const workerUrl = `http://127.0.0.1:${ports.worker}`;
  const proxyUrl = `http://127.0.0.1:${ports.proxy}`;

  // A clean env: nothing from the developer's shell (REDIS_URL, .env overrides) leaks into the stack.
  const base: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    HOST: '127.0.0.1',
    REDIS_URL: redis.url,
    CACHE_ADMIN_TOKEN: token,
    LOG_LEVEL: 'warn',
    NODE_ENV: 'test',
    // Authentication on (the default), without limits the walks and loads here would reach: the limits have tests of their own.
    AUTH_RATE_LIMIT_PER_MINUTE: '0',
    AUTH_LOGIN_MAX_FAILURES_PER_IP: '1000000',
    EMBEDDINGS_INPUTS_PER_MINUTE: '0',
    MULTIMODAL_WORKER_URL: workerUrl,
    RETRIEVAL_PROXY_URL: proxyUrl,
  };
  const envFor = (name: ServiceName, port: number): Record<string, string> => ({ ...base, PORT: String(port), ...opts.env?.[name] });

  // cwd = the Redis data dir: no stray .env is read from the repo.
  const worker = new ServiceProcess('multimodal-worker', ports.worker, envFor('multimodal-worker', ports.worker), redis.dir);
  const proxy = new ServiceProcess('retrieval-proxy', ports.proxy, envFor('retrieval-proxy', ports.proxy), redis.dir);
  const agents = new ServiceProcess('ai-agents', ports.agents, envFor('ai-agents', ports.agents), redis.dir);
  const clients: Redis[] = [];
  const extra: ServiceProcess[] = [];

  const stop = async (): Promise<void> => {
    await Promise.all([...extra, agents, proxy, worker].map((s) => s.stop()));
    for (const c of clients) c.disconnect();
    await redis.stop();
  };

  try {
    await worker.start();
    await proxy.start();
    await agents.start();
  } catch (err) {
    await stop();
    throw err;
  }

  let made = 0;
  const principal = async (tenant: string, scopes: Array<'read' | 'write' | 'admin'> = ['write']): Promise<Principal> => {
    const username = `${tenant}-${++made}-${randomBytes(3).toString('hex')}`;
    const password = randomBytes(12).toString('hex');
    const role = scopes.includes('admin') ? 'admin' : scopes.includes('write') ? 'write' : 'read';
    const user = await call<{ id: string }>(agents.url, 'POST', '/api/v1/auth/users', { body: { username, password, tenant, role }, headers: bearer(token) });
    if (user.status !== 201) throw new Error(`POST /api/v1/auth/users answered ${user.status}: ${user.text}`);
    const key = await call<{ key: string; record: { id: string } }>(agents.url, 'POST', '/api/v1/auth/keys', {
      body: { name: 'e2e', scopes, userId: user.json.id },
      headers: bearer(token),
    });
    if (key.status !== 201) throw new Error(`POST /api/v1/auth/keys answered ${key.status}: ${key.text}`);
    return { userId: user.json.id, username, tenant, key: key.json.key, keyId: key.json.record.id, password };
  };
  const user = await principal('e2e');
  defaultAuthorization = `Bearer ${user.key}`;

  return {
    redis,
    token,
    user,
    principal,
    worker,
    proxy,
    agents,
    byName: { 'multimodal-worker': worker, 'retrieval-proxy': proxy, 'ai-agents': agents },
    db(index: number) {
      const c = new Redis(`${redis.url}/${index}`, { maxRetriesPerRequest: 1 });
      clients.push(c);
      return c;
    },
    async another(name, env) {
      const port = await freePort();
      const service = new ServiceProcess(name, port, { ...envFor(name, port), ...env }, redis.dir);
      extra.push(service);
      await service.start();
      return service;
    },
    stop,
  };
}

/** What `call` sends when a request names no Authorization header: the stack's user (set by startStack). */
let defaultAuthorization: string | undefined;

export interface HttpAnswer<T = unknown> {
  status: number;
  headers: Headers;
  text: string;
  json: T;
}

/** JSON over fetch with a 10 s bound: a hang fails the test instead of stalling it. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read answers loosely and assert on them
export async function call<T = any>(
  baseUrl: string,
  method: string,
  path: string,
  opts: { body?: unknown; headers?: Record<string, string>; timeoutMs?: number; /** false: no credential at all. */ auth?: false } = {},
): Promise<HttpAnswer<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.auth !== false && !('authorization' in headers) && defaultAuthorization) headers.authorization = defaultAuthorization;
  let body: string | undefined;
  if (opts.body !== undefined) {
    headers['content-type'] ??= 'application/json';
    body = JSON.stringify(opts.body);
  }
  const res = await fetch(`${baseUrl}${path}`, { method, headers, body, signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000) });
  const text = await res.text();
  let json: unknown = undefined;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json: json as T };
}

export const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });
