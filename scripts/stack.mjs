#!/usr/bin/env node
// `npm start`: the whole stack on this machine with only Node, npm and a Redis (or redis-server).
//   1. installs dependencies when the lockfile or a package.json changed since the last install
//   2. builds the three services and the packages they use (turbo; cached builds are instant)
//   3. finds a Redis: REDIS_URL, else 127.0.0.1:6379, else starts redis-server (data in .data/redis)
//   4. reads or makes the cache admin token (.data/admin-token, mode 0600)
//   5. starts the services, prefixes their output with their names, waits for every /ready,
//      prints the URLs and a walk-through. Ctrl-C / SIGTERM stops them (and the Redis it started).
// Flags: --no-install, --no-build. Environment: REDIS_URL, REDIS_PASSWORD (for a 6379 that wants one),
// MULTIMODAL_WORKER_PORT / RETRIEVAL_PROXY_PORT / AI_AGENTS_PORT (8001-8003), HOST, LOG_LEVEL,
// CACHE_ADMIN_TOKEN, STACK_READY_TIMEOUT_MS (60000), STACK_DATA_DIR (.data), REDIS_SERVER_BIN.
// .env is not read.
// No dependencies: this runs before `pnpm install`.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, join, relative, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dataDir = process.env.STACK_DATA_DIR ? resolve(process.env.STACK_DATA_DIR) : join(root, '.data');
/** A path as short as it can be said from here: relative below the working directory, else absolute. */
const rel = (p) => {
  const r = relative(process.cwd(), p);
  return r === '' ? '.' : r.startsWith('..') ? p : r;
};
const tty = process.stdout.isTTY && !process.env.NO_COLOR;
const paint = (code, text) => (tty ? `\x1b[${code}m${text}\x1b[0m` : text);

const SERVICES = [
  { name: 'multimodal-worker', portVar: 'MULTIMODAL_WORKER_PORT', port: 8001, color: 36 },
  { name: 'retrieval-proxy', portVar: 'RETRIEVAL_PROXY_PORT', port: 8002, color: 35 },
  { name: 'ai-agents', portVar: 'AI_AGENTS_PORT', port: 8003, color: 33 },
];

const USAGE = `Usage: npm start [-- --no-install] [-- --no-build]
Runs multimodal-worker, retrieval-proxy and ai-agents on this machine against a Redis.
  --no-install   skip 'pnpm install --frozen-lockfile'
  --no-build     skip 'turbo run build' (services/*/dist must exist)`;

const flags = process.argv.slice(2);
for (const f of flags) {
  if (f === '--help' || f === '-h') {
    console.log(USAGE);
    process.exit(0);
  }
  if (f !== '--no-install' && f !== '--no-build') {
    console.error(`Unknown option ${f}\n${USAGE}`);
    process.exit(2);
  }
}

function say(message) {
  console.log(`${paint(1, '[stack]')} ${message}`);
}

function fail(message) {
  console.error(`${paint('1;31', '[stack]')} ${message}`);
}

// ---------------------------------------------------------------------------------------------
// children and shutdown
// ---------------------------------------------------------------------------------------------
/** @type {{ label: string, child: import('node:child_process').ChildProcess, stopping: boolean }[]} */
const children = [];
let shuttingDown = false;

function exited(child) {
  return child.exitCode !== null || child.signalCode !== null;
}

function waitExit(child, ms) {
  return new Promise((resolve) => {
    if (exited(child)) return resolve(true);
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function stopChild(entry, ms) {
  const { child } = entry;
  if (exited(child)) return;
  entry.stopping = true;
  child.kill('SIGTERM');
  if (!(await waitExit(child, ms))) {
    fail(`${entry.label} did not stop within ${ms / 1000}s; killing it`);
    child.kill('SIGKILL');
    await waitExit(child, 2000);
  }
}

/** Stops services first (they flush to Redis on close), then a Redis this script started. */
async function shutdown(code, reason) {
  if (shuttingDown) return;
  shuttingDown = true;
  if (reason) say(reason);
  const services = children.filter((c) => c.label !== 'redis');
  await Promise.all(services.map((c) => stopChild(c, 10_000)));
  const unclean = services.filter((c) => c.child.exitCode !== 0 && c.child.exitCode !== null);
  for (const c of unclean) fail(`${c.label} exited with code ${c.child.exitCode} while stopping`);
  const redis = children.find((c) => c.label === 'redis');
  if (redis) await stopChild(redis, 15_000);
  say('stopped');
  process.exit(code !== 0 ? code : unclean.length > 0 ? 1 : 0);
}

let interrupts = 0;
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    interrupts += 1;
    if (interrupts > 1) {
      for (const c of children) if (!exited(c.child)) c.child.kill('SIGKILL');
      process.exit(130);
    }
    void shutdown(0, `${signal}: stopping (again to force)`);
  });
}
// Last resort if this process dies of an exception: leave no orphan behind.
process.on('exit', () => {
  for (const c of children) if (!exited(c.child)) c.child.kill('SIGKILL');
});

const LEVELS = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };
const LEVEL_COLORS = { 40: 33, 50: 31, 60: 31 };
const QUIET_FIELDS = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'service', 'name', 'v']);

/** A pino JSON line made short for a terminal; any other line as it is. */
function formatLine(line) {
  if (!line.startsWith('{')) return line;
  try {
    const entry = JSON.parse(line);
    if (typeof entry !== 'object' || entry === null || typeof entry.level !== 'number') return line;
    const level = (LEVELS[entry.level] ?? String(entry.level)).padEnd(5);
    const rest = Object.fromEntries(Object.entries(entry).filter(([k]) => !QUIET_FIELDS.has(k)));
    const extra = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : '';
    return `${paint(LEVEL_COLORS[entry.level] ?? 2, level)} ${entry.msg ?? ''}${extra}`;
  } catch {
    return line;
  }
}

function pipeOutput(label, color, child) {
  const prefix = paint(color, `[${label}]`);
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
      console.log(`${prefix} ${formatLine(line)}`);
    });
  }
}

// ---------------------------------------------------------------------------------------------
// 1 + 2: install and build
// ---------------------------------------------------------------------------------------------
function mtime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

function workspacePackageDirs() {
  const dirs = [];
  for (const group of ['packages', 'services']) {
    const base = join(root, group);
    if (!existsSync(base)) continue;
    for (const name of readdirSync(base)) {
      if (existsSync(join(base, name, 'package.json'))) dirs.push(join(base, name));
    }
  }
  return dirs;
}

function installNeeded() {
  const marker = mtime(join(root, 'node_modules', '.modules.yaml'));
  if (marker === 0) return 'no node_modules yet';
  if (mtime(join(root, 'pnpm-lock.yaml')) > marker) return 'pnpm-lock.yaml changed';
  for (const dir of [root, ...workspacePackageDirs()]) {
    if (mtime(join(dir, 'package.json')) > marker) return `${rel(join(dir, 'package.json'))} changed`;
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    const hasDeps = Object.keys({ ...pkg.dependencies, ...pkg.devDependencies }).length > 0;
    if (hasDeps && !existsSync(join(dir, 'node_modules'))) return `${rel(dir)} has no node_modules`;
  }
  return undefined;
}

function run(title, args) {
  say(title);
  const res = spawnSync(process.execPath, [join(root, 'scripts', 'pnpm.mjs'), ...args], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1', DO_NOT_TRACK: '1' },
  });
  if (res.status !== 0) {
    fail(`${title} failed (exit ${res.status ?? res.signal}). Fix the error above and run npm start again.`);
    process.exit(1);
  }
}

// ---------------------------------------------------------------------------------------------
// 3: Redis
// ---------------------------------------------------------------------------------------------
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

function portFree(port, host = '127.0.0.1') {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function maskUrl(url) {
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
  // Own process group: a terminal's Ctrl-C reaches only this script, which stops Redis last.
  const child = spawn(bin, [conf, '--port', String(port), '--dir', dir, '--daemonize', 'no'], {
    cwd: root,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const entry = { label: 'redis', child, stopping: false };
  children.push(entry);
  pipeOutput('redis', 32, child);
  child.on('exit', (code, signal) => {
    if (!shuttingDown && !entry.stopping) fail(`redis-server exited (${code ?? signal}); the services now answer without a cache`);
  });
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

async function findRedis() {
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

// ---------------------------------------------------------------------------------------------
// 4: admin token
// ---------------------------------------------------------------------------------------------
function adminToken() {
  if (process.env.CACHE_ADMIN_TOKEN) return { token: process.env.CACHE_ADMIN_TOKEN, shell: '$CACHE_ADMIN_TOKEN', where: 'CACHE_ADMIN_TOKEN' };
  const file = join(dataDir, 'admin-token');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  let token = existsSync(file) ? readFileSync(file, 'utf8').trim() : '';
  if (!token) {
    token = randomBytes(32).toString('hex');
    writeFileSync(file, `${token}\n`, { mode: 0o600 });
    say(`made a cache admin token: ${rel(file)} (mode 0600)`);
  }
  chmodSync(file, 0o600);
  return { token, shell: `$(cat ${rel(file)})`, where: rel(file) };
}

// ---------------------------------------------------------------------------------------------
// 5: services
// ---------------------------------------------------------------------------------------------
function servicePort(svc) {
  const raw = process.env[svc.portVar];
  if (raw === undefined || raw === '') return svc.port;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    fail(`${svc.portVar} must be a port number, got ${JSON.stringify(raw)}`);
    process.exit(1);
  }
  return port;
}

async function waitReady(services, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  const last = new Map();
  const pending = new Set(services);
  while (pending.size > 0) {
    for (const svc of pending) {
      if (exited(svc.child)) {
        fail(`${svc.name} exited (code ${svc.child.exitCode ?? svc.child.signalCode}) before it was ready; its output is above.`);
        return false;
      }
    }
    await Promise.all(
      [...pending].map(async (svc) => {
        try {
          const res = await fetch(`${svc.probeUrl}/ready`, { signal: AbortSignal.timeout(2000) });
          const body = await res.text();
          if (res.status === 200) pending.delete(svc);
          else last.set(svc.name, `HTTP ${res.status} ${body.slice(0, 300)}`);
        } catch (err) {
          last.set(svc.name, err instanceof Error ? err.message : String(err));
        }
      }),
    );
    if (pending.size === 0) break;
    if (Date.now() > deadline) {
      fail(`not ready after ${timeoutMs / 1000}s:`);
      for (const svc of pending) fail(`  ${svc.name} ${svc.probeUrl}/ready: ${last.get(svc.name) ?? 'no answer'}`);
      return false;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return true;
}

function walkThrough(urls, token, redisUrl) {
  const [worker, proxy, agents] = urls;
  // The scripts default to 127.0.0.1:8001-8003, 127.0.0.1:6379 and .data/admin-token: say only what differs.
  const differs = [
    ['MULTIMODAL_WORKER_URL', worker, 'http://127.0.0.1:8001'],
    ['RETRIEVAL_PROXY_URL', proxy, 'http://127.0.0.1:8002'],
    ['AI_AGENTS_URL', agents, 'http://127.0.0.1:8003'],
    // REDIS_PASSWORD / REDIS_USERNAME in the environment reach the scripts as they are; never print a password.
    ['REDIS_URL', redisUrl === process.env.REDIS_URL ? '$REDIS_URL' : new URL(redisUrl).host === '127.0.0.1:6379' ? undefined : redisUrl, undefined],
    ['CACHE_ADMIN_TOKEN_FILE', token.where === 'CACHE_ADMIN_TOKEN' ? undefined : token.where, '.data/admin-token'],
  ].filter(([, value, fallback]) => value !== undefined && value !== fallback);
  const checkEnv = differs.map(([name, value]) => `${name}=${value} `).join('');
  const json = "-H 'content-type: application/json'";
  const id = `node -pe 'JSON.parse(require("fs").readFileSync(0)).id'`;
  return `
  multimodal-worker  ${worker}   docs ${worker}/docs
  retrieval-proxy    ${proxy}   docs ${proxy}/docs
  ai-agents          ${agents}   docs ${agents}/docs
  admin token        ${token.where}

Try it (another terminal):
  # 1. Ingest a document through the proxy (the worker embeds its chunks)
  curl -s -X POST ${proxy}/api/v1/documents ${json} \\
    -d '{"id":"redis-intro","title":"Redis","text":"Redis is an in-memory key-value store. It keeps data in RAM and can persist it with an append-only file. Keys can expire after a time to live."}'
  # 2. Search twice: the first answer says x-cache: miss, the second x-cache: hit
  curl -s -i -X POST ${proxy}/api/v1/search ${json} -d '{"query":"how does redis persist data?"}'
  curl -s -i -X POST ${proxy}/api/v1/search ${json} -d '{"query":"how does redis persist data?"}'
  # 3. The proxy's cache figures (hits, misses per category)
  curl -s ${proxy}/api/v1/cache/stats
  # 4. Create an agent, start a conversation, ask it (context comes from the proxy)
  AGENT=$(curl -s -X POST ${agents}/api/v1/agents ${json} -d '{"name":"helper","instructions":"Answer from the documents."}' | ${id})
  CONV=$(curl -s -X POST ${agents}/api/v1/agents/$AGENT/conversations | ${id})
  curl -s -X POST ${agents}/api/v1/conversations/$CONV/messages ${json} -d '{"content":"How does Redis keep data?"}'
  # 5. Admin routes need the token: a cache round trip, then clearing the proxy's cache
  curl -s -X POST ${proxy}/api/v1/cache/test -H "Authorization: Bearer ${token.shell}"
  curl -s -X DELETE ${proxy}/api/v1/cache/clear -H "Authorization: Bearer ${token.shell}"
  # Checks (exit 0 when all is well):
  ${checkEnv}infra/scripts/health-check.sh && ${checkEnv}infra/scripts/test-redis-integration.sh

Ctrl-C stops everything.`;
}

async function main() {
  if (!flags.includes('--no-install')) {
    const why = installNeeded();
    if (why) run(`installing dependencies (${why})`, ['install', '--frozen-lockfile']);
  }
  if (!flags.includes('--no-build')) {
    run('building the services', [
      'exec', 'turbo', 'run', 'build', '--output-logs=errors-only',
      ...SERVICES.map((s) => `--filter=@aicache/${s.name}...`),
    ]);
  }

  const host = process.env.HOST || '127.0.0.1';
  const probeHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  const services = SERVICES.map((svc) => {
    const port = servicePort(svc);
    const url = `http://${probeHost.includes(':') ? `[${probeHost}]` : probeHost}:${port}`;
    return { ...svc, port, url, probeUrl: url, dir: join(root, 'services', svc.name), child: undefined };
  });
  for (const svc of services) {
    if (!existsSync(join(svc.dir, 'dist', 'server.js'))) {
      fail(`${rel(join(svc.dir, 'dist', 'server.js'))} is missing: run npm start without --no-build.`);
      process.exit(1);
    }
    if (!(await portFree(svc.port, probeHost))) {
      fail(`port ${svc.port} for ${svc.name} is taken. Stop what uses it, or pick another: ${svc.portVar}=<port> npm start`);
      process.exit(1);
    }
  }

  const redisUrl = await findRedis();
  const token = adminToken();
  const [worker, proxy] = services;
  const common = {
    ...process.env,
    NODE_ENV: process.env.NODE_ENV || 'development',
    HOST: host,
    LOG_LEVEL: process.env.LOG_LEVEL || 'info',
    REDIS_URL: redisUrl,
    CACHE_ADMIN_TOKEN: token.token,
    MULTIMODAL_WORKER_URL: worker.url,
    RETRIEVAL_PROXY_URL: proxy.url,
  };

  for (const svc of services) {
    say(`starting ${svc.name} on ${svc.url}`);
    // Working directory: the service's folder, so a root .env made for docker compose is not read.
    svc.child = spawn(process.execPath, [join('dist', 'server.js')], {
      cwd: svc.dir,
      env: { ...common, PORT: String(svc.port) },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const entry = { label: svc.name, child: svc.child, stopping: false };
    children.push(entry);
    pipeOutput(svc.name, svc.color, svc.child);
    svc.child.on('exit', (code, signal) => {
      if (shuttingDown || entry.stopping) return;
      void shutdown(1, `${svc.name} exited unexpectedly (${code ?? signal}); stopping the stack`);
    });
  }

  const timeoutMs = Number(process.env.STACK_READY_TIMEOUT_MS) || 60_000;
  if (!(await waitReady(services, timeoutMs))) {
    await shutdown(1, 'the stack did not become ready; stopping');
    return;
  }
  say(`${paint('1;32', 'ready')}: ${services.map((s) => `${s.name} ${s.url}`).join(', ')}`);
  console.log(walkThrough(services.map((s) => s.url), token, redisUrl));
}

main().catch(async (err) => {
  fail(err instanceof Error ? (err.stack ?? err.message) : String(err));
  await shutdown(1);
});
