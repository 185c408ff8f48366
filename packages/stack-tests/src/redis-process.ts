import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@aicache/test-redis';
import { Redis, type RedisOptions } from 'ioredis';

export interface RedisProcess {
  port: number;
  dir: string;
  /** What the server wrote to stdout/stderr so far. */
  output(): string;
  client(opts?: RedisOptions): Redis;
  /** SIGKILL by default; SIGTERM is a clean shutdown (Redis flushes its AOF first). */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Runs `command args... --port <free> --dir <tmp>` (a redis-server, or a script that execs one, such
 * as infra/redis/start-redis.sh) exactly as given: unlike startRedisServer, nothing in the conf file
 * under test is overridden except what the caller passes.
 */
export async function runRedis(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  auth: RedisOptions = {},
  opts: { dir?: string; port?: number } = {},
): Promise<RedisProcess> {
  // A given dir (and port) outlives this process: start again on it to test a restart.
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'stack-tests-redis-'));
  mkdirSync(dir, { recursive: true });
  const port = opts.port ?? (await freePort());
  let out = '';
  const child: ChildProcess = spawn(command, [...args, '--port', String(port), '--dir', dir, '--bind', '127.0.0.1', '--daemonize', 'no'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  const clients: Redis[] = [];
  const proc: RedisProcess = {
    port,
    dir,
    output: () => out,
    client(opts: RedisOptions = {}) {
      const c = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, ...auth, ...opts });
      c.on('error', () => undefined);
      clients.push(c);
      return c;
    },
    async stop(signal: NodeJS.Signals = 'SIGKILL') {
      for (const c of clients) c.disconnect();
      if (child.exitCode === null && child.signalCode === null) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill(signal);
        await gone;
      }
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) {
      await proc.stop();
      throw new Error(`${command} exited with ${child.exitCode}:\n${out}`);
    }
    if (/Ready to accept connections/.test(out)) return proc;
    if (Date.now() > deadline) {
      await proc.stop();
      throw new Error(`${command} did not become ready:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

