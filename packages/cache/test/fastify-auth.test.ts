import Fastify from 'fastify';
import { Type } from 'typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireAdmin } from '../src/fastify/index.js';
import { TOKEN, auth, buildApp, getTestRedis, type TestRedis } from './fastify-helpers.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await getTestRedis();
}, 60_000);
afterAll(async () => {
  await redis?.stop();
});

const mutating = [
  { method: 'DELETE', url: '/api/v1/cache/clear' },
  { method: 'POST', url: '/api/v1/cache/invalidate', payload: { category: 'search_results', keys: ['x'] } },
  { method: 'POST', url: '/api/v1/cache/test' },
] as const;

describe('admin bearer check', () => {
  it.each(mutating)('$method $url answers 401 without a header, with a wrong or different-length token', async (route) => {
    const app = await buildApp(redis);
    try {
      const cases = [
        {},
        { authorization: `Bearer ${TOKEN.slice(0, -1)}x` },
        { authorization: 'Bearer short' },
        { authorization: `Bearer ${TOKEN}${TOKEN}` },
        { authorization: TOKEN },
        { authorization: `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}` },
      ];
      for (const headers of cases) {
        const res = await app.inject({ ...route, headers });
        expect(res.statusCode, JSON.stringify(headers)).toBe(401);
        const body = res.json();
        expect(body).toEqual({
          statusCode: 401,
          code: 'CACHE_ADMIN_UNAUTHORIZED',
          error: 'Unauthorized',
          message: expect.any(String),
        });
        expect(res.body).not.toContain(TOKEN);
        expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
      }
      const ok = await app.inject({ ...route, headers: auth() });
      expect(ok.statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('answers 401 saying CACHE_ADMIN_TOKEN is not set when no token is configured, even to a bearer', async () => {
    const app = await buildApp(redis, { adminToken: undefined });
    try {
      for (const route of mutating) {
        for (const headers of [{}, auth(), { authorization: 'Bearer ' }]) {
          const res = await app.inject({ ...route, headers });
          expect(res.statusCode).toBe(401);
          expect(res.json().code).toBe('CACHE_ADMIN_UNAUTHORIZED');
          expect(res.json().message).toMatch(/CACHE_ADMIN_TOKEN is not set/);
        }
      }
      // Read-only stats stay open.
      expect((await app.inject({ method: 'GET', url: '/api/v1/cache/stats' })).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('an empty adminToken counts as no token', async () => {
    const app = await buildApp(redis, { adminToken: '' });
    try {
      const res = await app.inject({ method: 'DELETE', url: '/api/v1/cache/clear', headers: { authorization: 'Bearer ' } });
      expect(res.statusCode).toBe(401);
      expect(res.json().message).toMatch(/CACHE_ADMIN_TOKEN is not set/);
    } finally {
      await app.close();
    }
  });

  it('production without a token refuses to start, naming CACHE_ADMIN_TOKEN', async () => {
    await expect(buildApp(redis, { adminToken: undefined, production: true })).rejects.toThrow(/CACHE_ADMIN_TOKEN/);
    const app = await buildApp(redis, { production: true });
    await app.close();
  });

  it('checks the token before looking at the body: an unauthorized bad body is 401, not 400', async () => {
    const app = await buildApp(redis);
    try {
      const res = await app.inject({ method: 'POST', url: '/api/v1/cache/invalidate', payload: { nope: 1 } });
      expect(res.statusCode).toBe(401);
    } finally {
      await app.close();
    }
  });
});

describe('adminRoutes option', () => {
  it('puts a service route under the prefix behind the bearer check', async () => {
    const app = await buildApp(redis, {
      adminRoutes: async (scope) => {
        scope.delete<{ Params: { fileHash: string } }>('/file/:fileHash', async (req) => ({
          removed: await scope.cache.category('search_results').invalidate([req.params.fileHash]),
        }));
      },
    });
    try {
      const url = '/api/v1/cache/file/abc123';
      await app.cache.category('search_results').set('abc123', { v: 1 });
      expect((await app.inject({ method: 'DELETE', url })).statusCode).toBe(401);
      expect((await app.inject({ method: 'DELETE', url, headers: auth('wrong') })).statusCode).toBe(401);
      expect(await app.cache.category('search_results').has('abc123')).toBe(true);
      const ok = await app.inject({ method: 'DELETE', url, headers: auth() });
      expect(ok.statusCode).toBe(200);
      expect(ok.json()).toEqual({ removed: 1 });
      expect(await app.cache.category('search_results').has('abc123')).toBe(false);
    } finally {
      await app.close();
    }
  });
});

describe('rate limit', () => {
  it('answers 429 to the N+1-th admin call in the window, wrong tokens included; other routes are not limited', async () => {
    const app = await buildApp(redis, { rateLimit: { max: 3, timeWindow: 60_000 } }, async (a) => {
      a.get('/outside', async () => ({ ok: true }));
    });
    try {
      const statuses: number[] = [];
      statuses.push((await app.inject({ method: 'POST', url: '/api/v1/cache/test', headers: auth() })).statusCode);
      statuses.push((await app.inject({ method: 'DELETE', url: '/api/v1/cache/clear', headers: auth('guess') })).statusCode);
      statuses.push((await app.inject({ method: 'DELETE', url: '/api/v1/cache/clear', headers: auth() })).statusCode);
      expect(statuses).toEqual([200, 401, 200]);

      const limited = await app.inject({ method: 'DELETE', url: '/api/v1/cache/clear', headers: auth('guess-again') });
      expect(limited.statusCode).toBe(429);
      expect(limited.json()).toMatchObject({ statusCode: 429, code: 'CACHE_ADMIN_RATE_LIMITED', error: 'Too Many Requests' });
      expect(limited.headers['retry-after']).toBeDefined();
      expect((await app.inject({ method: 'POST', url: '/api/v1/cache/test', headers: auth() })).statusCode).toBe(429);

      for (let i = 0; i < 5; i++) {
        expect((await app.inject({ method: 'GET', url: '/outside' })).statusCode).toBe(200);
      }
    } finally {
      await app.close();
    }
  });

  it('a dashboard polling GET /stats does not eat the mutating routes\' budget', async () => {
    const app = await buildApp(redis, { rateLimit: { max: 3, timeWindow: 60_000, stats: { max: 10, timeWindow: 60_000 } } });
    try {
      for (let i = 0; i < 10; i++) expect((await app.inject({ method: 'GET', url: '/api/v1/cache/stats' })).statusCode).toBe(200);
      const polled = await app.inject({ method: 'GET', url: '/api/v1/cache/stats' });
      expect(polled.statusCode).toBe(429);
      expect(polled.json()).toMatchObject({ statusCode: 429, code: 'CACHE_STATS_RATE_LIMITED' });
      expect(polled.headers['retry-after']).toBeDefined();
      // The mutating routes still have all of theirs.
      for (let i = 0; i < 3; i++) expect((await app.inject({ method: 'POST', url: '/api/v1/cache/test', headers: auth() })).statusCode).toBe(200);
      expect((await app.inject({ method: 'POST', url: '/api/v1/cache/test', headers: auth() })).statusCode).toBe(429);
    } finally {
      await app.close();
    }
  });

  it('mutating admin calls do not eat the budget of GET /stats', async () => {
    const app = await buildApp(redis, { rateLimit: { max: 2, timeWindow: 60_000, stats: { max: 5, timeWindow: 60_000 } } });
    try {
      for (let i = 0; i < 2; i++) expect((await app.inject({ method: 'DELETE', url: '/api/v1/cache/clear', headers: auth() })).statusCode).toBe(200);
      expect((await app.inject({ method: 'DELETE', url: '/api/v1/cache/clear', headers: auth() })).statusCode).toBe(429);
      for (let i = 0; i < 5; i++) expect((await app.inject({ method: 'GET', url: '/api/v1/cache/stats' })).statusCode).toBe(200);
      expect((await app.inject({ method: 'GET', url: '/api/v1/cache/stats' })).statusCode).toBe(429);
    } finally {
      await app.close();
    }
  });

  it('by default GET /stats allows far more than the admin limit: a dashboard polling every second for a minute is never refused', async () => {
    const app = await buildApp(redis, { rateLimit: { max: 60, timeWindow: 60_000 } });
    try {
      for (let i = 0; i < 120; i++) expect((await app.inject({ method: 'GET', url: '/api/v1/cache/stats' })).statusCode).toBe(200);
      expect((await app.inject({ method: 'POST', url: '/api/v1/cache/test', headers: auth() })).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('rateLimit: false leaves limiting to the host', async () => {
    const app = await buildApp(redis, { rateLimit: false });
    try {
      for (let i = 0; i < 70; i++) {
        expect((await app.inject({ method: 'GET', url: '/api/v1/cache/stats' })).statusCode).toBe(200);
      }
    } finally {
      await app.close();
    }
  });

  it('counts per client IP', async () => {
    const app = await buildApp(redis, { rateLimit: { max: 1, timeWindow: 60_000, stats: { max: 1, timeWindow: 60_000 } } });
    try {
      for (const call of [
        (ip: string) => app.inject({ method: 'GET', url: '/api/v1/cache/stats', remoteAddress: ip }),
        (ip: string) => app.inject({ method: 'POST', url: '/api/v1/cache/test', headers: auth(), remoteAddress: ip }),
      ]) {
        expect((await call('10.0.0.1')).statusCode).toBe(200);
        expect((await call('10.0.0.1')).statusCode).toBe(429);
        expect((await call('10.0.0.2')).statusCode).toBe(200);
      }
    } finally {
      await app.close();
    }
  });
});

describe('requireAdmin', () => {
  it('guards any route of a host app', async () => {
    const app = Fastify({ logger: false });
    app.get('/secret', { preHandler: requireAdmin('s3cret') }, async () => ({ ok: true }));
    app.get('/open', async () => ({ ok: true }));
    app.withTypeProvider<TypeBoxTypeProvider>().delete(
      '/typed/:id',
      { onRequest: requireAdmin('s3cret'), schema: { params: Type.Object({ id: Type.String() }) } },
      async (req) => ({ id: req.params.id }),
    );
    try {
      expect((await app.inject({ method: 'DELETE', url: '/typed/7' })).statusCode).toBe(401);
      expect((await app.inject({ method: 'DELETE', url: '/typed/7', headers: { authorization: 'Bearer s3cret' } })).json()).toEqual({ id: '7' });
      expect((await app.inject({ url: '/secret' })).statusCode).toBe(401);
      expect((await app.inject({ url: '/secret', headers: { authorization: 'Bearer nope' } })).json()).toMatchObject({
        code: 'CACHE_ADMIN_UNAUTHORIZED',
        message: 'Invalid admin token',
      });
      expect((await app.inject({ url: '/secret', headers: { authorization: 'bearer s3cret' } })).json()).toEqual({ ok: true });
      expect((await app.inject({ url: '/open' })).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });
});
