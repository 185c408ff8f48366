import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { Queue, Worker, type Job } from 'bullmq';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { authPlugin, createAuth } from '@aicache/auth';
import { startRedisServer, uniqueName, type RedisServer } from '@aicache/test-redis';
import { DASHBOARD_COOKIE, mountQueueDashboard } from '../src/dashboard.js';

const CHROMIUM = '/usr/bin/chromium';
const ADMIN_TOKEN = 'dashboard-admin-token-for-tests';
const READER_TOKEN = 'dashboard-reader-token-for-tests';

/** Stands in for app.auth.require('admin'): a bearer token, 401 without a known one, 403 for a non-admin one. */
async function requireAdmin(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const header = request.headers.authorization ?? '';
  const token = header.startsWith('Bearer ') ? header.slice(7) : '';
  if (token === ADMIN_TOKEN) return;
  if (token === READER_TOKEN) throw Object.assign(new Error('This credential lacks the admin scope'), { statusCode: 403, code: 'FORBIDDEN' });
  reply.header('www-authenticate', 'Bearer realm="aicache"');
  throw Object.assign(new Error('Missing or unknown credential'), { statusCode: 401, code: 'UNAUTHORIZED' });
}

let redis: RedisServer;
let queue: Queue;
let worker: Worker;
let app: FastifyInstance;
let base: string;
let release: () => void = () => undefined;
const held = new Promise<void>((resolve) => {
  release = resolve;
});
let running: Job;

beforeAll(async () => {
  redis = await startRedisServer();
  const connection = { host: redis.host, port: redis.port };
  queue = new Queue(uniqueName('dash-ingest'), { connection });
  let started: (job: Job) => void = () => undefined;
  const startedP = new Promise<Job>((resolve) => {
    started = resolve;
  });
  worker = new Worker(
    queue.name,
    async (job) => {
      await job.updateProgress(42);
      started(job);
      await held;
      return { done: true };
    },
    { connection },
  );
  await queue.add('bulk-ingest', { documents: 1000 });
  running = await startedP;

  app = Fastify({ logger: false });
  // The application's own error format: the dashboard's refusals must come out in it, not in bull-board's.
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _request, reply) => {
    const statusCode = err.statusCode ?? 500;
    return reply.code(statusCode).send({ statusCode, code: err.code ?? 'INTERNAL', message: statusCode >= 500 ? 'Internal Server Error' : err.message });
  });
  await mountQueueDashboard(app, { queues: [queue], onRequest: requireAdmin });
  await app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  release();
  await app?.close();
  await worker?.close();
  await queue?.close();
  await redis?.stop();
});

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

async function signIn(token: string): Promise<Response> {
  return fetch(`${base}/admin/queues/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }).toString(),
    redirect: 'manual',
  });
}

describe('queue dashboard over HTTP', () => {
  it('shows a person opening the page without a credential the sign-in form, still as a 401', async () => {
    const res = await fetch(`${base}/admin/queues/queue/${queue.name}`, { headers: { accept: 'text/html,application/xhtml+xml' } });
    expect(res.status).toBe(401);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    const html = await res.text();
    expect(html).toContain('action="/admin/queues/login"');
    expect(html).not.toContain('__UI_CONFIG__');
  });

  it('refuses the page, its assets and its API without the admin credential, in the application error format', async () => {
    for (const path of ['/admin/queues', '/admin/queues/', `/admin/queues/queue/${queue.name}`, '/admin/queues/api/queues', '/admin/queues/static/images/logo.svg']) {
      const res = await fetch(`${base}${path}`);
      expect(res.status, path).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="aicache"');
      expect(await res.json()).toEqual({ statusCode: 401, code: 'UNAUTHORIZED', message: 'Missing or unknown credential' });
    }
    const wrong = await fetch(`${base}/admin/queues/api/queues`, { headers: bearer('not-a-token') });
    expect(wrong.status).toBe(401);
    const reader = await fetch(`${base}/admin/queues/api/queues`, { headers: bearer(READER_TOKEN) });
    expect(reader.status).toBe(403);
  });

  it('serves the page and lists the queue with the running job and its progress to an admin bearer', async () => {
    const page = await fetch(`${base}/admin/queues`, { headers: bearer(ADMIN_TOKEN) });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(page.headers.get('content-security-policy')).toMatch(/frame-ancestors 'none'/);
    const html = await page.text();
    expect(html).toContain('<base href="/admin/queues/" />');
    expect(html).not.toContain('fonts.googleapis.com');
    // The UI's script, loaded relative to that base, is served too.
    const script = /src="(static\/js\/main\.[^"]+\.js)"/.exec(html)?.[1];
    expect(script).toBeDefined();
    const asset = await fetch(`${base}/admin/queues/${script}`, { headers: bearer(ADMIN_TOKEN) });
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-type')).toMatch(/javascript/);

    const api = await fetch(`${base}/admin/queues/api/queues?activeQueue=${encodeURIComponent(queue.name)}&status=active&page=1`, { headers: bearer(ADMIN_TOKEN) });
    expect(api.status).toBe(200);
    const body = (await api.json()) as { queues: { name: string; counts: { active: number }; jobs: { id: string; progress: unknown }[] }[] };
    const listed = body.queues.find((q) => q.name === queue.name);
    expect(listed?.counts.active).toBe(1);
    expect(listed?.jobs.map((j) => [j.id, j.progress])).toEqual([[running.id, 42]]);
  });

  it('exchanges the credential posted by the sign-in form for a short-lived HttpOnly SameSite=Strict cookie', async () => {
    const form = await fetch(`${base}/admin/queues/login`);
    expect(form.status).toBe(200);
    expect(await form.text()).toContain('action="/admin/queues/login"');

    const bad = await signIn('not-a-token');
    expect(bad.status).toBe(401);
    expect(bad.headers.get('set-cookie')).toBeNull();
    expect(await bad.text()).toContain('That credential was not accepted.');
    const reader = await signIn(READER_TOKEN);
    expect(reader.status).toBe(403);
    expect(reader.headers.get('set-cookie')).toBeNull();

    const empty = await fetch(`${base}/admin/queues/login`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' });
    expect(empty.status).toBe(400);
    expect(((await empty.json()) as { message: string }).message).toMatch(/form field "token"/);

    const ok = await signIn(ADMIN_TOKEN);
    expect(ok.status).toBe(303);
    expect(ok.headers.get('location')).toBe('/admin/queues/');
    const setCookie = ok.headers.get('set-cookie') ?? '';
    expect(setCookie).toMatch(new RegExp(`^${DASHBOARD_COOKIE}=[^;]+; Max-Age=900; Path=/admin/queues; HttpOnly; SameSite=Strict$`));
    expect(setCookie).not.toContain(ADMIN_TOKEN);
    const cookie = setCookie.split(';')[0]!;

    const page = await fetch(`${base}/admin/queues/`, { headers: { cookie } });
    expect(page.status).toBe(200);
    const api = await fetch(`${base}/admin/queues/api/queues`, { headers: { cookie } });
    expect(api.status).toBe(200);

    // A cookie altered in any way is worthless.
    const [name, value] = cookie.split('=') as [string, string];
    const mid = Math.floor(value.length / 2);
    const forged = `${name}=${value.slice(0, mid)}${value[mid] === 'A' ? 'B' : 'A'}${value.slice(mid + 1)}`;
    expect((await fetch(`${base}/admin/queues/api/queues`, { headers: { cookie: forged } })).status).toBe(401);
    // A bearer header is always checked, even beside a valid cookie.
    expect((await fetch(`${base}/admin/queues/api/queues`, { headers: { cookie, ...bearer('not-a-token') } })).status).toBe(401);
    // The rest of the service is not opened by the cookie: the hook guards the dashboard only.
    expect((await fetch(`${base}/elsewhere`, { headers: { cookie } })).status).toBe(404);
  });

  it('lets no cookie through once it has expired', async () => {
    const short = Fastify({ logger: false });
    try {
      await mountQueueDashboard(short, { queues: [queue], onRequest: requireAdmin, cookieTtlSeconds: 1 });
      await short.ready();
      const ok = await short.inject({ method: 'POST', url: '/admin/queues/login', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `token=${ADMIN_TOKEN}` });
      expect(ok.statusCode).toBe(303);
      const cookie = String(ok.headers['set-cookie']).split(';')[0]!;
      expect((await short.inject({ url: '/admin/queues/api/queues', headers: { cookie } })).statusCode).toBe(200);
      await new Promise((r) => setTimeout(r, 1100));
      expect((await short.inject({ url: '/admin/queues/api/queues', headers: { cookie } })).statusCode).toBe(401);
    } finally {
      await short.close();
    }
  });

  it('refuses a cookie made by another process (another signing key) and accepts one signed with a shared secret', async () => {
    const secret = 'a-shared-dashboard-cookie-secret-of-32+chars';
    const [a, b, c] = [Fastify({ logger: false }), Fastify({ logger: false }), Fastify({ logger: false })];
    try {
      await mountQueueDashboard(a, { queues: [queue], onRequest: requireAdmin, cookieSecret: secret });
      await mountQueueDashboard(b, { queues: [queue], onRequest: requireAdmin, cookieSecret: secret });
      await mountQueueDashboard(c, { queues: [queue], onRequest: requireAdmin, secureCookie: true });
      const ok = await a.inject({ method: 'POST', url: '/admin/queues/login', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `token=${ADMIN_TOKEN}` });
      const cookie = String(ok.headers['set-cookie']).split(';')[0]!;
      expect((await b.inject({ url: '/admin/queues/api/queues', headers: { cookie } })).statusCode).toBe(200);
      expect((await c.inject({ url: '/admin/queues/api/queues', headers: { cookie } })).statusCode).toBe(401);
      const secure = await c.inject({ method: 'POST', url: '/admin/queues/login', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `token=${ADMIN_TOKEN}` });
      expect(String(secure.headers['set-cookie'])).toMatch(/; HttpOnly; SameSite=Strict; Secure$/);
    } finally {
      await Promise.all([a.close(), b.close(), c.close()]);
    }
    await expect(mountQueueDashboard(Fastify(), { queues: [queue], onRequest: requireAdmin, cookieSecret: 'short' })).rejects.toThrow(/at least 32 bytes/);
  });
});

describe('queue dashboard behind the services\' authentication (packages/auth)', () => {
  it('takes app.auth.require(\'admin\') as its hook: admins in by bearer or cookie, others refused, the rest of the service still guarded', async () => {
    const authRedis = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    const svc = Fastify({ logger: false });
    try {
      const parts = await createAuth({ redis: authRedis, service: 'dashboard-test', sessionTtlSeconds: 3600, cacheTtlMs: 5000, sessionTouchMs: 0, adminToken: ADMIN_TOKEN, auditMaxEntries: 100, timeoutMs: 1000 });
      svc.addHook('onClose', async () => parts.authenticator.close());
      await svc.register(authPlugin, { service: 'dashboard-test', mode: 'on', ...parts, timeoutMs: 1000 });
      svc.get('/data', async () => ({ ok: true }));
      await mountQueueDashboard(svc, { queues: [queue], onRequest: svc.auth.require('admin') });
      await svc.ready();

      const user = await svc.inject({ method: 'POST', url: '/api/v1/auth/users', headers: bearer(ADMIN_TOKEN), payload: { username: uniqueName('reader'), password: 'correct horse battery', role: 'write' } });
      expect(user.statusCode, user.body).toBe(201);
      const key = await svc.inject({ method: 'POST', url: '/api/v1/auth/keys', headers: bearer(ADMIN_TOKEN), payload: { name: 'k', scopes: ['write'], userId: user.json().id } });
      expect(key.statusCode, key.body).toBe(201);
      const writeKey = key.json().key as string;

      const none = await svc.inject('/admin/queues/api/queues');
      expect(none.statusCode).toBe(401);
      expect(none.json().message).toMatch(/Missing credential/);
      expect((await svc.inject({ url: '/admin/queues/api/queues', headers: bearer('aik_nope') })).statusCode).toBe(401);
      const notAdmin = await svc.inject({ url: '/admin/queues/api/queues', headers: bearer(writeKey) });
      expect(notAdmin.statusCode).toBe(403);
      expect((await svc.inject({ url: '/admin/queues/api/queues', headers: bearer(ADMIN_TOKEN) })).statusCode).toBe(200);

      const form = { method: 'POST' as const, url: '/admin/queues/login', headers: { 'content-type': 'application/x-www-form-urlencoded' } };
      expect((await svc.inject({ ...form, payload: `token=${writeKey}` })).statusCode).toBe(403);
      const ok = await svc.inject({ ...form, payload: `token=${ADMIN_TOKEN}` });
      expect(ok.statusCode).toBe(303);
      const cookie = String(ok.headers['set-cookie']).split(';')[0]!;
      // The service-wide check, which wants a bearer header, leaves the dashboard's routes to the dashboard.
      expect((await svc.inject({ url: '/admin/queues/api/queues', headers: { cookie } })).statusCode).toBe(200);
      expect((await svc.inject({ url: '/admin/queues/', headers: { cookie } })).statusCode).toBe(200);
      // ...and nothing else: the cookie opens no other route.
      expect((await svc.inject({ url: '/data', headers: { cookie } })).statusCode).toBe(401);
      expect((await svc.inject({ url: '/data', headers: bearer(writeKey) })).statusCode).toBe(200);

      // An admin's API key: actions taken through the cookie are audited as that admin's, and revoking the
      // key shuts the dashboard to its cookie at once.
      const adminName = uniqueName('ops');
      const admin = await svc.inject({ method: 'POST', url: '/api/v1/auth/users', headers: bearer(ADMIN_TOKEN), payload: { username: adminName, password: 'correct horse battery', role: 'admin' } });
      expect(admin.statusCode, admin.body).toBe(201);
      const adminKey = await svc.inject({ method: 'POST', url: '/api/v1/auth/keys', headers: bearer(ADMIN_TOKEN), payload: { name: 'ops', scopes: ['admin'], userId: admin.json().id } });
      expect(adminKey.statusCode, adminKey.body).toBe(201);
      const signedIn = await svc.inject({ ...form, payload: `token=${encodeURIComponent(adminKey.json().key as string)}` });
      expect(signedIn.statusCode).toBe(303);
      const adminCookie = String(signedIn.headers['set-cookie']).split(';')[0]!;
      const paused = await svc.inject({ method: 'PUT', url: `/admin/queues/api/queues/${queue.name}/pause`, headers: { cookie: adminCookie } });
      expect(paused.statusCode, paused.body).toBe(200);
      expect(await queue.isPaused()).toBe(true);
      const resumed = await svc.inject({ method: 'PUT', url: `/admin/queues/api/queues/${queue.name}/resume`, headers: { cookie: adminCookie } });
      expect(resumed.statusCode, resumed.body).toBe(200);
      expect(await queue.isPaused()).toBe(false);
      const entries = await parts.audit.read(10);
      const actions = entries.filter((e) => e.actor.startsWith(adminName)).map((e) => e.action);
      expect(actions).toEqual(expect.arrayContaining(['PUT /admin/queues/api/queues/:queueName/pause', 'PUT /admin/queues/api/queues/:queueName/resume']));

      const revoke = await svc.inject({ method: 'DELETE', url: `/api/v1/auth/keys/${adminKey.json().record.id}`, headers: bearer(ADMIN_TOKEN) });
      expect(revoke.statusCode, revoke.body).toBeLessThan(300);
      const afterRevoke = await svc.inject({ url: '/admin/queues/api/queues', headers: { cookie: adminCookie } });
      expect(afterRevoke.statusCode).toBe(401);
    } finally {
      await svc.close();
      authRedis.disconnect();
    }
  });
});

describe('queue dashboard when Redis is in trouble', () => {
  it('answers 503 within its timeout while Redis hangs or is down, keeps serving the page, and recovers', async () => {
    const own = await startRedisServer();
    const q = new Queue(uniqueName('dash-trouble'), { connection: { host: own.host, port: own.port } });
    q.on('error', () => undefined);
    const trouble = Fastify({ logger: false });
    try {
      await q.add('one', {});
      await mountQueueDashboard(trouble, { queues: [q], onRequest: requireAdmin, timeoutMs: 1000 });
      await trouble.ready();
      const ask = async () => {
        const t0 = performance.now();
        const res = await trouble.inject({ url: '/admin/queues/api/queues', headers: bearer(ADMIN_TOKEN) });
        return { status: res.statusCode, body: res.json() as { code?: string; message?: string }, ms: performance.now() - t0 };
      };
      expect((await ask()).status).toBe(200);

      own.pause();
      const hung = await ask();
      expect(hung.status).toBe(503);
      expect(hung.body.code).toBe('QUEUES_UNAVAILABLE');
      expect(hung.body.message).toMatch(/did not answer within 1000 ms/);
      expect(hung.ms).toBeLessThan(3000);
      // The page itself needs no Redis.
      expect((await trouble.inject({ url: '/admin/queues/', headers: bearer(ADMIN_TOKEN) })).statusCode).toBe(200);
      own.resume();

      await own.kill();
      const down = await ask();
      expect(down.status).toBe(503);
      expect(down.body.code).toBe('QUEUES_UNAVAILABLE');
      expect(down.ms).toBeLessThan(3000);

      await own.restart();
      await expect.poll(async () => (await ask()).status, { timeout: 10_000, interval: 200 }).toBe(200);
    } finally {
      await trouble.close();
      await q.close();
      await own.stop();
    }
  });
});

const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn(`queue dashboard browser test skipped: ${CHROMIUM} is absent (apt-get install chromium)`);

describe.skipIf(!hasChromium)('queue dashboard in a headless browser', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('is refused without the credential, and after signing in renders the queue and the running job at 42 %', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const failures: string[] = [];
    page.on('pageerror', (err) => failures.push(`page error: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error' && !/status of 401/.test(msg.text())) failures.push(`console: ${msg.text()}`);
    });
    page.on('request', (req) => {
      if (!req.url().startsWith(base)) failures.push(`off-site request: ${req.url()}`);
    });
    page.on('response', (res) => {
      if (res.status() >= 400 && res.status() !== 401) failures.push(`${res.status()} ${res.url()}`);
    });

    // Refused, and shown the sign-in form instead; a wrong credential is refused again.
    const refused = await page.goto(`${base}/admin/queues`);
    expect(refused?.status()).toBe(401);
    expect(await page.textContent('body')).not.toContain(queue.name);
    await page.fill('#token', 'not-a-token');
    const [again] = await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    expect(again?.status()).toBe(401);
    await page.getByText('That credential was not accepted.').waitFor();

    await page.fill('#token', ADMIN_TOKEN);
    await Promise.all([page.waitForURL(`${base}/admin/queues/`), page.click('button[type=submit]')]);
    const cookies = await context.cookies();
    expect(cookies.find((c) => c.name === DASHBOARD_COOKIE)).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/admin/queues' });

    // The overview, rendered by the UI's scripts (so its static assets loaded and ran): the queue is listed.
    await page.getByText(queue.name).first().waitFor({ timeout: 15_000 });

    // The queue's active jobs: the running job with its progress.
    await page.goto(`${base}/admin/queues/queue/${encodeURIComponent(queue.name)}?status=active`);
    await page.getByText('bulk-ingest').first().waitFor({ timeout: 15_000 });
    await page.getByText('42%').first().waitFor({ timeout: 15_000 });
    expect(failures).toEqual([]);
    if (process.env.DASHBOARD_SCREENSHOT) await page.screenshot({ path: process.env.DASHBOARD_SCREENSHOT, fullPage: true });
    await context.close();
  });
});
