import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { freePort, startRedisServer, type RedisServer } from '@aicache/test-redis';
import { REPO } from './repo.js';

export const SERVICES = ['multimodal-worker', 'retrieval-proxy', 'ai-agents'] as const;
export type ServiceName = (typeof SERVICES)[number];

/** One service as `node services/<name>/dist/server.js`, waited for on /ready. */
export class ServiceProcess {
  readonly url: string;
  output = '';
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

  async start(): Promise<void> {
    const script = `${REPO}services/${this.name}/dist/server.js`;
    if (!existsSync(script)) throw new Error(`${script} is missing: build it first (pnpm --filter @aicache/${this.name} build)`);
    const child = spawn(process.execPath, [script], { cwd: this.cwd, env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (this.output += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (this.output += d));
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    const deadline = Date.now() + 60_000;
    let last = 'no answer';
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${this.name} exited before /ready:\n${this.output.slice(-4000)}`);
      try {
        const res = await fetch(`${this.url}/ready`, { signal: AbortSignal.timeout(2000) });
        if (res.status === 200) return;
        last = `${res.status} ${await res.text()}`;
      } catch (err) {
        last = (err as Error).message;
      }
      await new Promise((r) => setTimeout(r, 150));
    }
    throw new Error(`${this.name} not ready within 60 s (last: ${last}):\n${this.output.slice(-4000)}`);
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await this.exited;
    clearTimeout(timer);
  }
}

export interface OpsStack {
  /** The cache Redis (killed by tests). */
  cacheRedis: RedisServer;
  /** The state Redis: noeviction + AOF, as in production. */
  stateRedis: RedisServer;
  token: string;
  services: Record<ServiceName, ServiceProcess>;
  stop(): Promise<void>;
}

/**
 * Two private redis-servers (cache: LRU, no persistence; state: noeviction + AOF) and the three services as real
 * processes on free ports, so that a test can lose the cache Redis while the state stays.
 */
export async function startOpsStack(opts: { env?: Partial<Record<ServiceName, Record<string, string>>> } = {}): Promise<OpsStack> {
  const [cacheRedis, stateRedis] = await Promise.all([
    startRedisServer({ args: ['--maxmemory', '64mb', '--maxmemory-policy', 'allkeys-lru', '--save', ''] }),
    startRedisServer({ args: ['--maxmemory-policy', 'noeviction'], appendfsync: 'everysec' }),
  ]);
  const token = `ops-${randomBytes(16).toString('hex')}`;
  const ports = { 'multimodal-worker': await freePort(), 'retrieval-proxy': await freePort(), 'ai-agents': await freePort() };
  const base: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    HOST: '127.0.0.1',
    REDIS_URL: cacheRedis.url,
    REDIS_STATE_URL: stateRedis.url,
    CACHE_ADMIN_TOKEN: token,
    LOG_LEVEL: 'warn',
    NODE_ENV: 'test',
    // These tests are about metrics and alerts; authentication has its own tests.
    AUTH_MODE: 'off',
    MULTIMODAL_WORKER_URL: `http://127.0.0.1:${ports['multimodal-worker']}`,
    RETRIEVAL_PROXY_URL: `http://127.0.0.1:${ports['retrieval-proxy']}`,
  };
  // cwd = a Redis data dir: no stray .env is read from the repo.
  const services = Object.fromEntries(
    SERVICES.map((name) => [name, new ServiceProcess(name, ports[name], { ...base, PORT: String(ports[name]), ...opts.env?.[name] }, stateRedis.dir)]),
  ) as Record<ServiceName, ServiceProcess>;
  const stop = async (): Promise<void> => {
    await Promise.all(SERVICES.map((n) => services[n].stop()));
    await Promise.all([cacheRedis.stop(), stateRedis.stop()]);
  };
  try {
    for (const name of SERVICES) await services[name].start();
  } catch (err) {
    await stop();
    throw err;
  }
  return { cacheRedis, stateRedis, token, services, stop };
}

/** Prometheus text of GET /metrics. */
export async function scrape(url: string): Promise<string> {
  const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) });
  if (res.status !== 200) throw new Error(`${url}/metrics answered ${res.status}`);
  return res.text();
}
