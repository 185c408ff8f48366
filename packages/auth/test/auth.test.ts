import Fastify, { type FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServer } from '@aicache/test-redis';
import { authPlugin, createAuth, Limits, LoginLimiter, principalLimits, tenantOf, type AuthParts } from '../src/index.js';

let server: RedisServer;
let raw: Redis;
const apps: FastifyInstance[] = [];
const clients: Redis[] = [];
const ADMIN_TOKEN = 'bootstrap-admin-token-for-tests';

beforeAll(async () => {
  server = await startRedisServer();
  raw = new Redis(server.url);
});
afterAll(async () => {
  raw.disconnect();
  await server.stop();
});
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
  for (const c of clients.splice(0)) c.disconnect();
  await raw.flushdb();
});

/** One service replica: a Fastify app with the auth plugin and a few tenant routes, on the shared Redis. */
async function replica(opts: { mode?: 'on' | 'off'; cacheTtlMs?: number; sessionTtlSeconds?: number; timeoutMs?: number; url?: string; limits?: boolean } = {}) {
  const redis = new Redis(opts.url ?? server.url, { maxRetriesPerRequest: 1 });
  clients.push(redis);
  const parts: AuthParts = await createAuth({
    redis,
    service: 'test-service',
    sessionTtlSeconds: opts.sessionTtlSeconds ?? 3600,
    cacheTtlMs: opts.cacheTtlMs ?? 5000,
    sessionTouchMs: 0,
    adminToken: ADMIN_TOKEN,
    auditMaxEntries: 100,
    timeoutMs: opts.timeoutMs ?? 1000,
  });
  const app = Fastify({ logger: false });
  apps.push(app);
  app.addHook('onClose', async () => parts.authenticator.close());
  const limits = opts.limits
    ? principalLimits(
        new Limits({ redis, keyPrefix: 'auth:', logins: { maxFailuresPerUser: 5, maxFailuresPerIp: 50 }, requests: { limit: 30, windowMs: 60_000 }, inputs: { limit: 10, windowMs: 60_000 } }),
        new LoginLimiter({ redis, keyPrefix: 'auth:bearer:', maxFailuresPerUser: Number.MAX_SAFE_INTEGER, maxFailuresPerIp: 20 }),
      )
    : undefined;
  if (limits) app.addHook('onClose', async () => limits.close());
  await app.register(authPlugin, { service: 'test-service', mode: opts.mode ?? 'on', ...parts, ...(limits ? { limits } : {}), timeoutMs: opts.timeoutMs ?? 1000 });
  app.get('/data', async (req) => ({ tenant: tenantOf(req) }));
  app.post('/data', async (req) => ({ wrote: tenantOf(req) }));
  app.get('/health', async () => ({ ok: true }));
  app.post('/embed', { config: { auth: 'read' } }, async (req, reply) => {
    const inputs = (req.body as { input: string[] }).input;
    await app.auth.chargeInputs(req, reply, inputs.length);
    return { embedded: inputs.length };
  });
  app.delete('/admin/thing', { onRequest: app.auth.require('admin') }, async () => ({ done: true }));
  await app.ready();
  // The revocation subscription is up before the test relies on it.
  for (let i = 0; i < 100 && !parts.authenticator.subscribed; i++) await new Promise((r) => setTimeout(r, 20));
  return { app, parts };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

async function userWithKey(app: FastifyInstance, username: string, tenant: string, scopes: string[] = ['write'], role = 'write') {
  const user = await app.inject({ method: 'POST', url: '/api/v1/auth/users', headers: bearer(ADMIN_TOKEN), payload: { username, password: 'correct horse battery', tenant, role } });
  expect(user.statusCode, user.body).toBe(201);
  const key = await app.inject({ method: 'POST', url: '/api/v1/auth/keys', headers: bearer(ADMIN_TOKEN), payload: { name: 'k', scopes, userId: user.json().id } });
  expect(key.statusCode, key.body).toBe(201);
  return { user: user.json(), key: key.json().key as string, keyId: key.json().record.id as string };
}

async function login(app: FastifyInstance, username: string, password = 'correct horse battery') {
  return app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username, password } });
}

describe('credentials', () => {
  it('asks for a credential on every route but the open ones, and tells a missing one from a wrong one', async () => {
    const { app } = await replica();
    expect((await app.inject('/health')).statusCode).toBe(200);
    const none = await app.inject('/data');
    expect(none.statusCode).toBe(401);
    expect(none.json().message).toMatch(/Missing credential/);
    expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
    for (const wrong of ['aik_nope', 'ses_nope', 'eyJhbGciOiJIUzI1NiJ9.e30.x', 'not-a-token']) {
      const res = await app.inject({ url: '/data', headers: bearer(wrong) });
      expect(res.statusCode, wrong).toBe(401);
      expect(res.json().message).toBe('Invalid, expired or revoked credential');
    }
  });

  it('an API key acts for its tenant within its scopes; a read key cannot write', async () => {
    const { app } = await replica();
    const { key } = await userWithKey(app, 'alice', 'acme', ['read']);
    const read = await app.inject({ url: '/data', headers: bearer(key) });
    expect(read.json()).toEqual({ tenant: 'acme' });
    const write = await app.inject({ method: 'POST', url: '/data', headers: bearer(key) });
    expect(write.statusCode).toBe(403);
    expect(write.json().message).toMatch(/needs write/);
    // Keys are stored by digest only: the secret is nowhere in Redis.
    const dump = (await raw.keys('*')).join(' ') + JSON.stringify(await Promise.all((await raw.keys('auth:key:*')).map((k) => raw.hgetall(k))));
    expect(dump).not.toContain(key);
  });

  it('a key cannot be minted above its maker or above the user role', async () => {
    const { app } = await replica();
    const { key, user } = await userWithKey(app, 'bob', 'acme', ['write']);
    const up = await app.inject({ method: 'POST', url: '/api/v1/auth/keys', headers: bearer(key), payload: { name: 'x', scopes: ['admin'] } });
    expect(up.statusCode).toBe(403);
    const above = await app.inject({ method: 'POST', url: '/api/v1/auth/keys', headers: bearer(ADMIN_TOKEN), payload: { name: 'x', scopes: ['admin'], userId: user.id } });
    expect(above.statusCode).toBe(403);
    expect(above.json().code).toBe('SCOPE_NOT_ALLOWED');
    const other = await app.inject({ method: 'POST', url: '/api/v1/auth/keys', headers: bearer(key), payload: { name: 'x', scopes: ['read'], userId: 'usr_someone' } });
    expect(other.statusCode).toBe(403);
  });

  it('an expired key stops working', async () => {
    const { app, parts } = await replica();
    const { user } = await userWithKey(app, 'carol', 'acme');
    const created = await parts.store.createKey((await parts.store.getUser(user.id))!, { name: 'short', scopes: ['read'], expiresInSeconds: 1 });
    expect((await app.inject({ url: '/data', headers: bearer(created.key) })).statusCode).toBe(200);
    await new Promise((r) => setTimeout(r, 1100));
    expect((await app.inject({ url: '/data', headers: bearer(created.key) })).statusCode).toBe(401);
  });

  it('the bootstrap token opens admin routes, and an admin route refuses a write key', async () => {
    const { app } = await replica();
    const { key } = await userWithKey(app, 'dave', 'acme');
    expect((await app.inject({ method: 'DELETE', url: '/admin/thing', headers: bearer(ADMIN_TOKEN) })).statusCode).toBe(200);
    expect((await app.inject({ method: 'DELETE', url: '/admin/thing', headers: bearer(key) })).statusCode).toBe(403);
    expect((await app.inject({ method: 'DELETE', url: '/admin/thing' })).statusCode).toBe(401);
  });
});

describe('sessions (login, sliding expiry, logout, logout-all)', () => {
  it('login gives a session whose use pushes its expiry out in Redis', async () => {
    const { app } = await replica({ sessionTtlSeconds: 600 });
    await userWithKey(app, 'erin', 'acme');
    const res = await login(app, 'erin');
    expect(res.statusCode, res.body).toBe(200);
    const { token, expiresIn } = res.json();
    expect(expiresIn).toBe(600);
    const [sessionKey] = await raw.keys('auth:session:*');
    expect(await raw.ttl(sessionKey!)).toBeGreaterThan(590);
    await raw.expire(sessionKey!, 100);
    const me = await app.inject({ url: '/api/v1/auth/me', headers: bearer(token) });
    expect(me.json().principal).toMatchObject({ kind: 'session', tenant: 'acme', username: 'erin' });
    // The use above pushed it back out to the full TTL.
    expect(await raw.ttl(sessionKey!)).toBeGreaterThan(590);
    expect(me.json().sessionExpiresIn).toBeGreaterThan(590);
  });

  it('a wrong password and an unknown user get the same answer', async () => {
    const { app } = await replica();
    await userWithKey(app, 'frank', 'acme');
    const wrong = await login(app, 'frank', 'wrong password!!');
    const unknown = await login(app, 'nobody-here', 'wrong password!!');
    expect(wrong.statusCode).toBe(401);
    expect(unknown.statusCode).toBe(401);
    expect(wrong.json().message).toBe(unknown.json().message);
  });

  it('logout ends the session on every replica; logout-all ends every session of the user', async () => {
    const a = await replica();
    const b = await replica();
    await userWithKey(a.app, 'grace', 'acme');
    const s1 = (await login(a.app, 'grace')).json().token;
    const s2 = (await login(b.app, 'grace')).json().token;
    const s3 = (await login(b.app, 'grace')).json().token;
    for (const s of [s1, s2, s3]) for (const { app } of [a, b]) expect((await app.inject({ url: '/data', headers: bearer(s) })).statusCode).toBe(200);

    expect((await a.app.inject({ method: 'POST', url: '/api/v1/auth/logout', headers: bearer(s1) })).statusCode).toBe(204);
    await waitFor(async () => (await b.app.inject({ url: '/data', headers: bearer(s1) })).statusCode === 401);
    expect((await a.app.inject({ url: '/data', headers: bearer(s1) })).statusCode).toBe(401);
    expect((await b.app.inject({ url: '/data', headers: bearer(s2) })).statusCode).toBe(200);

    const all = await a.app.inject({ method: 'POST', url: '/api/v1/auth/logout-all', headers: bearer(s2) });
    expect(all.json()).toEqual({ ended: 2 });
    for (const s of [s2, s3]) {
      await waitFor(async () => (await b.app.inject({ url: '/data', headers: bearer(s) })).statusCode === 401);
      expect((await a.app.inject({ url: '/data', headers: bearer(s) })).statusCode).toBe(401);
    }
    expect(await raw.keys('auth:session:*')).toEqual([]);
  });
});

/** Polls up to 2 s (well under the 5 s cache TTL: only the pub/sub announcement can make it true this fast). */
async function waitFor(check: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < 2000) {
    if (await check()) return Date.now() - started;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error('not true within 2 s');
}

describe('revocation', () => {
  it('a revoked key stops working on another replica that had it cached, well before the cache TTL', async () => {
    const a = await replica({ cacheTtlMs: 30_000 });
    const b = await replica({ cacheTtlMs: 30_000 });
    const { key, keyId } = await userWithKey(a.app, 'heidi', 'acme');
    expect((await b.app.inject({ url: '/data', headers: bearer(key) })).statusCode).toBe(200);
    expect(b.parts.authenticator.has(b.parts.authenticator.digestOf(key))).toBe(true);
    const revoked = await a.app.inject({ method: 'DELETE', url: `/api/v1/auth/keys/${keyId}`, headers: bearer(key) });
    expect(revoked.statusCode).toBe(204);
    const ms = await waitFor(async () => (await b.app.inject({ url: '/data', headers: bearer(key) })).statusCode === 401);
    expect(ms).toBeLessThan(2000);
  });

  it('deleting a user revokes its keys and sessions everywhere', async () => {
    const a = await replica({ cacheTtlMs: 30_000 });
    const b = await replica({ cacheTtlMs: 30_000 });
    const { key, user } = await userWithKey(a.app, 'ivan', 'acme');
    const session = (await login(a.app, 'ivan')).json().token;
    for (const t of [key, session]) expect((await b.app.inject({ url: '/data', headers: bearer(t) })).statusCode).toBe(200);
    expect((await a.app.inject({ method: 'DELETE', url: `/api/v1/auth/users/${user.id}`, headers: bearer(ADMIN_TOKEN) })).statusCode).toBe(204);
    for (const t of [key, session]) await waitFor(async () => (await b.app.inject({ url: '/data', headers: bearer(t) })).statusCode === 401);
    expect(await raw.keys('auth:user:*')).toEqual([]);
  });

  it('tells work done later in a principal\'s name (a background job) whether its key and user still stand', async () => {
    const { app, parts } = await replica();
    const { key, keyId, user } = await userWithKey(app, 'olivia', 'acme');
    const byKey = (await app.inject({ url: '/api/v1/auth/me', headers: bearer(key) })).json().principal;
    const session = (await login(app, 'olivia')).json().token;
    const bySession = (await app.inject({ url: '/api/v1/auth/me', headers: bearer(session) })).json().principal;
    expect(byKey).toMatchObject({ kind: 'key', credentialId: keyId });
    expect(await parts.store.principalLive(byKey)).toBe(true);
    expect(await parts.store.principalLive(bySession)).toBe(true);
    expect(await parts.store.principalLive({ kind: 'anonymous', tenant: 'default', scopes: ['write'] })).toBe(true);

    await app.inject({ method: 'DELETE', url: `/api/v1/auth/keys/${keyId}`, headers: bearer(ADMIN_TOKEN) });
    expect(await parts.store.principalLive(byKey)).toBe(false);
    // A logout does not end the user's work; removing the user does.
    await app.inject({ method: 'POST', url: '/api/v1/auth/logout', headers: bearer(session) });
    expect(await parts.store.principalLive(bySession)).toBe(true);
    await app.inject({ method: 'DELETE', url: `/api/v1/auth/users/${user.id}`, headers: bearer(ADMIN_TOKEN) });
    expect(await parts.store.principalLive(bySession)).toBe(false);
  });

  it("another user's key id answers 404, like one that does not exist", async () => {
    const { app } = await replica();
    const one = await userWithKey(app, 'judy', 'acme');
    const two = await userWithKey(app, 'mallory', 'evil');
    const res = await app.inject({ method: 'DELETE', url: `/api/v1/auth/keys/${one.keyId}`, headers: bearer(two.key) });
    expect(res.statusCode).toBe(404);
    expect((await app.inject({ url: '/data', headers: bearer(one.key) })).statusCode).toBe(200);
  });
});

describe('limits', () => {
  it('locks a username out after repeated failed logins, even for the right password, and says when to retry', async () => {
    const { app } = await replica({ limits: true });
    await userWithKey(app, 'nina', 'acme');
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await login(app, 'nina', `wrong password ${i}`)).statusCode);
    expect(statuses).toEqual([401, 401, 401, 401, 401]);
    const locked = await login(app, 'nina');
    expect(locked.statusCode).toBe(429);
    expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0);
    expect(locked.json().message).toMatch(/Too many failed logins/);
    // Another user from the same address is not locked by nina's failures.
    await userWithKey(app, 'oscar', 'acme');
    expect((await login(app, 'oscar')).statusCode).toBe(200);
  });

  it('counts embedding inputs per principal: 429 with Retry-After past the budget, 413 for one batch above all of it', async () => {
    const one = await replica({ limits: true });
    const two = await replica({ limits: true });
    const { key } = await userWithKey(one.app, 'quinn', 'acme', ['read'], 'read');
    const embed = (app: FastifyInstance, n: number) => app.inject({ method: 'POST', url: '/embed', headers: bearer(key), payload: { input: Array(n).fill('x') } });
    expect((await embed(one.app, 11)).statusCode).toBe(413);
    expect((await embed(one.app, 6)).statusCode).toBe(200);
    expect((await embed(two.app, 4)).statusCode).toBe(200);
    // 10 used across the two replicas: the next input is refused on either.
    const refused = await embed(one.app, 1);
    expect(refused.statusCode).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(refused.json().message).toMatch(/Embedding inputs per minute/);
  });

  it('limits requests per credential across two replicas sharing the count (429 with Retry-After)', async () => {
    const one = await replica({ limits: true });
    const two = await replica({ limits: true });
    const { key } = await userWithKey(one.app, 'pia', 'acme');
    let allowed = 0;
    let refused: { statusCode: number; headers: Record<string, unknown> } | undefined;
    for (let i = 0; i < 40 && !refused; i++) {
      for (const { app } of [one, two]) {
        const res = await app.inject({ url: '/data', headers: bearer(key) });
        if (res.statusCode === 200) allowed++;
        else refused ??= res;
      }
      await new Promise((r) => setTimeout(r, 60)); // past a flush, so each replica sees the other's count
    }
    expect(refused?.statusCode).toBe(429);
    expect(Number(refused?.headers['retry-after'])).toBeGreaterThan(0);
    // 30 a minute together, not 30 each.
    expect(allowed).toBeGreaterThanOrEqual(30);
    expect(allowed).toBeLessThan(40);
  });
});

describe('service tokens', () => {
  it('carry the tenant to a peer, which checks the signature and expiry without a Redis lookup of the user', async () => {
    const a = await replica();
    const b = await replica();
    const { key } = await userWithKey(a.app, 'kim', 'acme', ['read']);
    const principal = (await a.app.inject({ url: '/api/v1/auth/me', headers: bearer(key) })).json().principal;
    const token = await a.parts.tokens.mint(principal);
    const res = await b.app.inject({ url: '/data', headers: bearer(token) });
    expect(res.json()).toEqual({ tenant: 'acme' });
    // Scopes travel too: a read principal's token cannot write.
    expect((await b.app.inject({ method: 'POST', url: '/data', headers: bearer(token) })).statusCode).toBe(403);
    const tampered = token.slice(0, -4) + (token.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    expect((await b.app.inject({ url: '/data', headers: bearer(tampered) })).statusCode).toBe(401);
  });

  it('refuses an expired token and one signed with another secret', async () => {
    const { app, parts } = await replica();
    // The first token minted creates the shared secret on the state Redis.
    await parts.tokens.mint({ kind: 'key', tenant: 'acme', scopes: ['write'] });
    const secret = new TextEncoder().encode((await raw.get('auth:secret:service-token'))!);
    const base = () => new SignJWT({ tenant: 'acme', scopes: ['write'] }).setProtectedHeader({ alg: 'HS256' }).setIssuer('x').setAudience('aicache-services').setSubject('usr_1');
    const expired = await base().setIssuedAt(Math.floor(Date.now() / 1000) - 120).setExpirationTime(Math.floor(Date.now() / 1000) - 60).sign(secret);
    const forged = await base().setExpirationTime('60s').sign(new TextEncoder().encode('x'.repeat(43)));
    const good = await base().setExpirationTime('60s').sign(secret);
    expect((await app.inject({ url: '/data', headers: bearer(good) })).statusCode).toBe(200);
    expect((await app.inject({ url: '/data', headers: bearer(expired) })).statusCode).toBe(401);
    expect((await app.inject({ url: '/data', headers: bearer(forged) })).statusCode).toBe(401);
  });
});

describe('shared secrets', () => {
  it('are made once and are the same for every replica', async () => {
    const a = await replica();
    const b = await replica();
    const [one, two] = await Promise.all([a.parts.store.sharedSecret('dashboard'), b.parts.store.sharedSecret('dashboard')]);
    expect(one).toBe(two);
    expect(Buffer.from(one, 'base64url').length).toBe(32);
    expect(await a.parts.store.sharedSecret('other')).not.toBe(one);
  });
});

describe('audit', () => {
  it('records user and key changes and admin actions, in a bounded stream an admin can read', async () => {
    const { app } = await replica();
    const { key } = await userWithKey(app, 'leo', 'acme');
    expect((await app.inject({ method: 'DELETE', url: '/admin/thing', headers: bearer(ADMIN_TOKEN) })).statusCode).toBe(200);
    const res = await app.inject({ url: '/api/v1/auth/audit', headers: bearer(ADMIN_TOKEN) });
    expect(res.statusCode).toBe(200);
    const actions = res.json().items.map((e: { action: string }) => e.action);
    expect(actions).toEqual(['DELETE /admin/thing', 'key.create', 'user.create']);
    expect(res.json().items[0]).toMatchObject({ actor: 'bootstrap-admin', service: 'test-service', status: '200' });
    expect((await app.inject({ url: '/api/v1/auth/audit', headers: bearer(key) })).statusCode).toBe(403);
    for (let i = 0; i < 400; i++) await app.inject({ method: 'DELETE', url: '/admin/thing', headers: bearer(ADMIN_TOKEN) });
    // MAXLEN ~ 100: trimmed by whole macro nodes, so a little over 100, never 400.
    expect(await raw.xlen('auth:audit')).toBeLessThan(250);
  });
});

describe('modes and outages', () => {
  it('AUTH_MODE=off: no credential acts for tenant default, admin routes still need an admin credential', async () => {
    const { app } = await replica({ mode: 'off' });
    expect((await app.inject('/data')).json()).toEqual({ tenant: 'default' });
    expect((await app.inject({ method: 'DELETE', url: '/admin/thing' })).statusCode).toBe(401);
    expect((await app.inject({ method: 'DELETE', url: '/admin/thing', headers: bearer(ADMIN_TOKEN) })).statusCode).toBe(200);
  });

  it('a Redis that does not answer makes a credential check a 503 within the bound, never a hang', async () => {
    const own = await startRedisServer();
    try {
      const { app } = await replica({ url: own.url, timeoutMs: 300 });
      const { key } = await userWithKey(app, 'max', 'acme');
      own.pause();
      const started = Date.now();
      const res = await app.inject({ url: '/data', headers: bearer(`${key}x`) });
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe('1');
      expect(Date.now() - started).toBeLessThan(1500);
      own.resume();
    } finally {
      await own.stop();
    }
  });
});
