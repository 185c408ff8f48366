import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startRedisServer, type RedisServer } from '@aicache/test-redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVICES, cleanEnv, repoPath, repoRoot, run } from '../src/index.js';

const STACK = repoPath('scripts', 'stack.mjs');
const READY_LINE = /^\[stack\] ready: /m;

interface Stack {
  child: ChildProcess;
  output: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startStack(env: NodeJS.ProcessEnv): Stack {
  const child = spawn(process.execPath, [STACK, '--no-install', '--no-build'], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => out, exit };
}

async function waitFor(stack: Stack, pattern: RegExp, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pattern.test(stack.output())) {
    if (stack.child.exitCode !== null) throw new Error(`stack.mjs exited with ${stack.child.exitCode} before ${pattern}:\n${stack.output()}`);
    if (Date.now() > deadline) throw new Error(`no ${pattern} within ${ms / 1000}s:\n${stack.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The API key npm start made for the walk-through (read once the stack is ready). */
let apiKey = '';

async function postJson(url: string, body?: unknown): Promise<{ status: number; cache: string | null; json: Record<string, unknown> }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, cache: res.headers.get('x-cache'), json: (await res.json()) as Record<string, unknown> };
}

describe('npm start (scripts/stack.mjs) end to end, against a private Redis', () => {
  let redis: RedisServer;
  let dataDir: string;
  let stack: Stack;
  let env: NodeJS.ProcessEnv;
  const urls: Record<string, string> = {};

  beforeAll(async () => {
    redis = await startRedisServer({ appendfsync: 'everysec' });
    dataDir = mkdtempSync(join(tmpdir(), 'stack-tests-data-'));
    const ports = await Promise.all(SERVICES.map(() => freePort()));
    SERVICES.forEach((s, i) => (urls[s.name] = `http://127.0.0.1:${ports[i]}`));
    env = cleanEnv({
      REDIS_URL: redis.url,
      MULTIMODAL_WORKER_PORT: String(ports[0]),
      RETRIEVAL_PROXY_PORT: String(ports[1]),
      AI_AGENTS_PORT: String(ports[2]),
      STACK_DATA_DIR: dataDir,
      STACK_READY_TIMEOUT_MS: '90000',
      LOG_LEVEL: 'warn',
    });
    stack = startStack(env);
    await waitFor(stack, READY_LINE, 100_000);
    apiKey = readFileSync(join(dataDir, 'api-key'), 'utf8').trim();
  }, 120_000);

  afterAll(async () => {
    if (stack && stack.child.exitCode === null && stack.child.signalCode === null) {
      stack.child.kill('SIGTERM');
      await Promise.race([stack.exit, new Promise((r) => setTimeout(r, 20_000))]);
      if (stack.child.exitCode === null) stack.child.kill('SIGKILL');
    }
    await redis?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('prints a ready line with the three URLs and a walk-through', () => {
    const out = stack.output();
    for (const s of SERVICES) expect(out).toContain(`${s.name} ${urls[s.name]}`);
    expect(out).toContain('/api/v1/documents');
    expect(out).toContain('/api/v1/search');
    expect(out).toContain('/api/v1/conversations/');
  });

  it('has every service answer /ready with 200', async () => {
    for (const s of SERVICES) {
      const res = await fetch(`${urls[s.name]}/ready`);
      expect(res.status, `${s.name} /ready`).toBe(200);
    }
  });

  it('made an admin token in STACK_DATA_DIR, readable by its owner only, and never printed it', () => {
    const file = join(dataDir, 'admin-token');
    expect(existsSync(file)).toBe(true);
    expect(statSync(file).mode & 0o077).toBe(0);
    const token = readFileSync(file, 'utf8').trim();
    expect(token).toMatch(/^[0-9a-f]{64}$/);
    expect(stack.output()).not.toContain(token);
  });

  it('made user demo with an API key and a password, kept 0600 and never printed; routes refuse a request without one', async () => {
    for (const name of ['api-key', 'demo-password']) {
      const file = join(dataDir, name);
      expect(statSync(file).mode & 0o077).toBe(0);
      expect(stack.output()).not.toContain(readFileSync(file, 'utf8').trim());
    }
    expect(apiKey).toMatch(/^aik_/);
    const open = await fetch(`${urls['retrieval-proxy']}/api/v1/search`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query":"x"}' });
    expect(open.status).toBe(401);
    const login = await fetch(`${urls['ai-agents']}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'demo', password: readFileSync(join(dataDir, 'demo-password'), 'utf8').trim() }),
    });
    expect(login.status).toBe(200);
    const me = await fetch(`${urls['multimodal-worker']}/api/v1/auth/me`, { headers: { authorization: `Bearer ${((await login.json()) as { token: string }).token}` } });
    expect(((await me.json()) as { principal: { username: string; tenant: string } }).principal).toMatchObject({ username: 'demo', tenant: 'default' });
  });

  /** Runs an infra script against this stack, as the walk-through tells a user to. */
  const runCheck = (script: string, extra: Record<string, string> = {}) =>
    run('bash', [repoPath('infra', 'scripts', script)], cleanEnv({
      MULTIMODAL_WORKER_URL: urls['multimodal-worker'],
      RETRIEVAL_PROXY_URL: urls['retrieval-proxy'],
      AI_AGENTS_URL: urls['ai-agents'],
      REDIS_URL: redis.url,
      ...extra,
    }));

  it('passes infra/scripts/health-check.sh', async () => {
    const res = await runCheck('health-check.sh');
    expect(res.code, res.output).toBe(0);
  });

  it('passes infra/scripts/test-redis-integration.sh (DB isolation, AOF, stats, admin probe)', async () => {
    const res = await runCheck('test-redis-integration.sh', { CACHE_ADMIN_TOKEN_FILE: join(dataDir, 'admin-token') });
    expect(res.code, res.output).toBe(0);
  });

  it('does what the walk-through says: ingest, search twice (miss then hit), ask an agent', async () => {
    const proxy = urls['retrieval-proxy'] as string;
    const agents = urls['ai-agents'] as string;
    const ingest = await postJson(`${proxy}/api/v1/documents`, {
      id: 'redis-intro',
      title: 'Redis',
      text: 'Redis is an in-memory key-value store. It keeps data in RAM and can persist it with an append-only file. Keys can expire after a time to live.',
    });
    expect(ingest.status, JSON.stringify(ingest.json)).toBe(201);

    const query = { query: 'how does redis persist data?' };
    const first = await postJson(`${proxy}/api/v1/search`, query);
    const second = await postJson(`${proxy}/api/v1/search`, query);
    expect(first.status).toBe(200);
    expect([first.cache, second.cache]).toEqual(['miss', 'hit']);
    expect(second.json).toEqual(first.json);

    const agent = await postJson(`${agents}/api/v1/agents`, { name: 'helper', instructions: 'Answer from the documents.' });
    expect(agent.status, JSON.stringify(agent.json)).toBe(201);
    const conv = await postJson(`${agents}/api/v1/agents/${String(agent.json.id)}/conversations`);
    expect(conv.status).toBe(201);
    const convId = String(conv.json.id);
    const answer = await postJson(`${agents}/api/v1/conversations/${convId}/messages`, { content: 'How does Redis keep data?' });
    expect(answer.status, JSON.stringify(answer.json)).toBe(201);
    expect(JSON.stringify(answer.json)).toMatch(/redis-intro/);
  });

  it('stops every service cleanly on SIGTERM and exits 0', async () => {
    stack.child.kill('SIGTERM');
    const { code } = await stack.exit;
    expect(code, stack.output().slice(-3000)).toBe(0);
    expect(stack.output()).toMatch(/^\[stack\] stopped$/m);
    for (const s of SERVICES) {
      await expect(fetch(`${urls[s.name]}/health`), `${s.name} is down`).rejects.toThrow();
    }
  });
});

describe('npm start (scripts/stack.mjs) refusing to run', () => {
  it('exits 1 and says so when REDIS_URL points at nothing', async () => {
    const port = await freePort();
    const res = await run(process.execPath, [STACK, '--no-install', '--no-build'], cleanEnv({
      REDIS_URL: `redis://127.0.0.1:${port}`,
      MULTIMODAL_WORKER_PORT: String(await freePort()),
      RETRIEVAL_PROXY_PORT: String(await freePort()),
      AI_AGENTS_PORT: String(await freePort()),
      STACK_DATA_DIR: join(tmpdir(), `stack-tests-unused-${process.pid}`),
    }));
    expect(res.code).toBe(1);
    expect(res.output).toMatch(/REDIS_URL redis:\/\/127\.0\.0\.1:\d+ does not answer PING/);
  });

  it('exits 2 with the usage on an unknown option', async () => {
    const res = await run(process.execPath, [STACK, '--bogus'], cleanEnv({}));
    expect(res.code).toBe(2);
    expect(res.output).toMatch(/Unknown option --bogus/);
    expect(res.output).toMatch(/--no-install/);
  });
});
