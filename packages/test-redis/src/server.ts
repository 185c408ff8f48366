import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync as readFile, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './port.js';

export interface RedisServerOptions {
  /** Extra redis-server arguments, e.g. ['--maxmemory', '10mb']. */
  args?: string[];
  /** Sets requirepass for the default user. */
  password?: string;
  /** Who the readiness probe and `url` log in as, for an ACL whose default user is off. */
  auth?: { username: string; password: string };
  /** Contents of an ACL file (one `user ...` rule a line); written into the server's dir. */
  acl?: string;
  /** Turns on AOF with this fsync policy. */
  appendfsync?: 'always' | 'everysec' | 'no';
  /** TLS: the server listens with TLS only on its port; files are paths. */
  tls?: { cert: string; key: string; ca: string; authClients?: boolean };
  /** Keep the data dir on stop (for restarts). Default: removed on stop. */
  dir?: string;
  /** Runs as a Sentinel (`redis-server <dir>/sentinel.conf --sentinel`); monitor primaries with SENTINEL MONITOR. */
  sentinel?: boolean;
}

export interface RedisServer {
  readonly host: string;
  readonly port: number;
  /** redis:// (or rediss:// with TLS) URL, with the password when one was set. */
  readonly url: string;
  readonly dir: string;
  readonly pid: number | undefined;
  /** SIGKILL, no shutdown save. */
  kill(): Promise<void>;
  /** SIGSTOP: the server holds connections but answers nothing. */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
  /** Starts the server again on the same port and data dir after kill() or stop(). */
  restart(): Promise<void>;
  /** Graceful stop; removes the data dir unless `dir` was given. */
  stop(): Promise<void>;
}

const BIN = process.env.REDIS_SERVER_BIN ?? 'redis-server';

// A test worker that dies or is torn down without stop() must not leave servers behind.
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

function ensureBinary(): void {
  const probe = spawnSync(BIN, ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new Error(
      `No Redis for tests: REDIS_URL is unset, no Docker engine answered, and '${BIN}' could not run. ` +
        'Install redis-server (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) or set REDIS_URL.',
    );
  }
}

async function waitReady(port: number, opts: RedisServerOptions, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 10_000;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with code ${child.exitCode}`);
    const client = new Redis({
      host: '127.0.0.1',
      port,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      enableOfflineQueue: false,
      connectTimeout: 500,
      enableReadyCheck: false,
      ...(opts.password ? { password: opts.password } : {}),
      ...(opts.auth ? { username: opts.auth.username, password: opts.auth.password } : {}),
      ...(opts.tls ? { tls: { ca: readFile(opts.tls.ca), cert: readFile(opts.tls.cert), key: readFile(opts.tls.key), rejectUnauthorized: false } } : {}),
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.ping();
      client.disconnect();
      return;
    } catch (err) {
      lastErr = err;
      client.disconnect();
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`redis-server on port ${port} did not become ready: ${String(lastErr)}`);
}


/**
 * Starts a private redis-server process on a free port, for tests that need a server of their own:
 * ones that kill, pause or restart Redis, read INFO commandstats, or need AUTH, ACL, TLS or AOF.
 */
export async function startRedisServer(opts: RedisServerOptions = {}): Promise<RedisServer> {
  ensureBinary();
  const keepDir = Boolean(opts.dir);
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'aicache-redis-'));
  let port = 0;
  let child: ChildProcess | undefined;

  const buildArgs = (): string[] => {
    // A Sentinel needs a config file of its own, first on the command line, which it rewrites as it learns.
    const sentinelConf = join(dir, 'sentinel.conf');
    if (opts.sentinel && !existsSync(sentinelConf)) writeFileSync(sentinelConf, '');
    const args = [...(opts.sentinel ? [sentinelConf, '--sentinel'] : []), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--daemonize', 'no', '--loglevel', 'warning', '--logfile', join(dir, 'redis.log')];
    if (opts.tls) {
      args.push('--port', '0', '--tls-port', String(port), '--tls-cert-file', opts.tls.cert, '--tls-key-file', opts.tls.key, '--tls-ca-cert-file', opts.tls.ca, '--tls-auth-clients', opts.tls.authClients ? 'yes' : 'no');
    } else {
      args.push('--port', String(port));
    }
    if (opts.password) args.push('--requirepass', opts.password);
    if (opts.acl !== undefined) {
      const aclPath = join(dir, 'users.acl');
      writeFileSync(aclPath, opts.acl.endsWith('\n') ? opts.acl : `${opts.acl}\n`);
      args.push('--aclfile', aclPath);
    }
    if (opts.appendfsync) args.push('--appendonly', 'yes', '--appendfsync', opts.appendfsync);
    else args.push('--appendonly', 'no');
    args.push(...(opts.args ?? []));
    return args;
  };

  const launch = async (): Promise<void> => {
    const c = spawn(BIN, buildArgs(), { stdio: 'ignore' });
    child = c;
    running.add(c);
    c.on('exit', () => running.delete(c));
    c.on('error', () => undefined);
    await waitReady(port, opts, c);
  };

  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    try {
      await launch();
      break;
    } catch (err) {
      child?.kill('SIGKILL');
      if (attempt >= 3) throw err;
    }
  }

  const waitExit = (c: ChildProcess | undefined): Promise<void> =>
    new Promise((resolve) => {
      if (!c || c.exitCode !== null || c.signalCode !== null) return resolve();
      c.once('exit', () => resolve());
    });

  const auth = opts.auth
    ? `${encodeURIComponent(opts.auth.username)}:${encodeURIComponent(opts.auth.password)}@`
    : opts.password
      ? `:${encodeURIComponent(opts.password)}@`
      : '';
  const scheme = opts.tls ? 'rediss' : 'redis';
  const server: RedisServer = {
    host: '127.0.0.1',
    port,
    url: `${scheme}://${auth}127.0.0.1:${port}`,
    dir,
    get pid() {
      return child?.pid;
    },
    async kill() {
      const c = child;
      c?.kill('SIGCONT');
      c?.kill('SIGKILL');
      await waitExit(c);
    },
    pause() {
      child?.kill('SIGSTOP');
    },
    resume() {
      child?.kill('SIGCONT');
    },
    async restart() {
      if (child && child.exitCode === null && child.signalCode === null) {
        await server.kill();
      }
      await launch();
    },
    async stop() {
      const c = child;
      c?.kill('SIGCONT');
      c?.kill('SIGTERM');
      const timer = setTimeout(() => c?.kill('SIGKILL'), 3000);
      await waitExit(c);
      clearTimeout(timer);
      if (!keepDir) rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}
