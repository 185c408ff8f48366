// Step 3 of npm start: a Redis to use. REDIS_URL, else 127.0.0.1:6379, else a redis-server this
// script starts (data in .data/redis) and stops last.
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { fail, rel, say } from './log.mjs';
import { dataDir, root } from './paths.mjs';
import { freePort, portFree } from './ports.mjs';
import { exited, shutdown, startChild } from './supervise.mjs';

/** Sends a raw PING; resolves 'pong', 'noauth', 'error: <reply>', 'closed' or 'timeout'. */
function probeRedis(host, port, timeoutMs = 1000) {
  return new Promise((resolve) => {
    let buffered = '';
    const socket = net.connect({ host, port });
    const done = (answer) => {
      socket.destroy();
      resolve(answer);
    };
    socket.setTimeout(timeoutMs, () => done('timeout'));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('error', () => done('closed'));
    socket.on('data', (chunk) => {
      buffered += chunk.toString('latin1');
      const end = buffered.indexOf('\r\n');
      if (end < 0) return;
      const line = buffered.slice(0, end);
      if (line === '+PONG') done('pong');
      else if (line.startsWith('-NOAUTH')) done('noauth');
      else done(`error: ${line.replace(/^-/, '')}`);
    });
    socket.on('close', () => done('closed'));
  });
}

export function maskUrl(url) {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '(unparsable REDIS_URL)';
  }
}

const NO_REDIS_HELP = `No Redis to use. npm start needs one of:
  - redis-server on the PATH (npm start then runs one itself, data in .data/redis):
      Debian/Ubuntu: sudo apt-get install redis-server    macOS: brew install redis
  - a Redis answering on 127.0.0.1:6379 (e.g. sudo systemctl start redis-server, brew services start redis)
  - REDIS_URL=redis://[user:password@]host:port pointing at one
  - or Docker instead of npm start: cp .env.example .env (set the secrets), then docker compose up --build`;

async function startRedisServer() {
  const bin = process.env.REDIS_SERVER_BIN ?? 'redis-server';
  const probe = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return undefined;
  const port = (await portFree(6379)) ? 6379 : await freePort();
  const dir = join(dataDir, 'redis');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const conf = join(root, 'infra', 'redis', 'redis.dev.conf');
  say(`starting redis-server on 127.0.0.1:${port} (${rel(conf)}, AOF in ${rel(dir)})`);
  const child = startChild('redis', 32, bin, [conf, '--port', String(port), '--dir', dir, '--daemonize', 'no'], { cwd: root }, (code, signal) =>
    fail(`redis-server exited (${code ?? signal}); the services now answer without a cache`),
  );
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (exited(child)) break;
    if ((await probeRedis('127.0.0.1', port)) === 'pong') return `redis://127.0.0.1:${port}`;
    await new Promise((r) => setTimeout(r, 100));
  }
  fail(`redis-server did not come up on port ${port} (its output is above)`);
  await shutdown(1);
  return undefined;
}

/** The URL the services get; exits with a message saying what to do when there is no Redis. */
export async function findRedis() {
  const given = process.env.REDIS_URL?.trim();
  if (given) {
    let u;
    try {
      u = new URL(given);
    } catch {
      fail('REDIS_URL is not a URL (expected redis://[user:password@]host:port)');
      process.exit(1);
    }
    if (u.protocol === 'redis:') {
      const answer = await probeRedis(u.hostname.replace(/^\[|\]$/g, ''), Number(u.port || 6379), 2000);
      if (answer !== 'pong' && answer !== 'noauth') {
        fail(`REDIS_URL ${maskUrl(given)} does not answer PING (${answer}).`);
        process.exit(1);
      }
    }
    say(`Redis: ${maskUrl(given)} (REDIS_URL)`);
    return given;
  }
  const local = await probeRedis('127.0.0.1', 6379);
  if (local === 'pong') {
    say('Redis: redis://127.0.0.1:6379 (already running; DBs 0-2 are used)');
    return 'redis://127.0.0.1:6379';
  }
  if (local === 'noauth' && process.env.REDIS_PASSWORD) {
    const user = process.env.REDIS_USERNAME ? encodeURIComponent(process.env.REDIS_USERNAME) : '';
    const url = `redis://${user}:${encodeURIComponent(process.env.REDIS_PASSWORD)}@127.0.0.1:6379`;
    say(`Redis: ${maskUrl(url)} (already running; REDIS_PASSWORD)`);
    return url;
  }
  if (local === 'noauth') say('the Redis on 127.0.0.1:6379 wants a password (set REDIS_PASSWORD to use it); starting a private one');
  const started = await startRedisServer();
  if (started) return started;
  fail(NO_REDIS_HELP);
  process.exit(1);
}
