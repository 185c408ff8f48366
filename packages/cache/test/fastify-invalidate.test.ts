import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { scanKeys } from '@aicache/test-redis';
import { auth, buildApp, getTestRedis, rawClient, type TestRedis } from './fastify-helpers.js';

let redis: TestRedis;
let raw: Redis;
let app: FastifyInstance;

beforeAll(async () => {
  redis = await getTestRedis();
  raw = rawClient(redis);
}, 60_000);
afterAll(async () => {
  raw?.disconnect();
  await redis?.stop();
});
beforeEach(async () => {
  app = await buildApp(redis);
});
afterEach(async () => {
  await app.close();
});

const SEARCH = ['user:1:a', 'user:1:b', 'user:2:a', 'other'];
const BUNDLES = ['user:1:a', 'b1'];

async function seed(): Promise<void> {
  const search = app.cache.category('search_results');
  const bundles = app.cache.category('context_bundles');
  for (const k of SEARCH) expect(await search.set(k, { k }, { tags: k.startsWith('user:1') ? ['user:1'] : ['misc'] })).toBe(true);
  for (const k of BUNDLES) expect(await bundles.set(k, { k }, { tags: k === 'b1' ? ['user:1'] : [] })).toBe(true);
}

/** Which of the seeded keys are still in Redis, read directly. */
async function present(): Promise<string[]> {
  const out: string[] = [];
  for (const [category, keys] of [['search_results', SEARCH], ['context_bundles', BUNDLES]] as const) {
    for (const k of keys) {
      if ((await raw.exists(app.cache.category(category).key(k))) === 1) out.push(`${category}/${k}`);
    }
  }
  return out;
}

const ALL = [...SEARCH.map((k) => `search_results/${k}`), ...BUNDLES.map((k) => `context_bundles/${k}`)];

const invalidate = (payload: unknown) =>
  app.inject({ method: 'POST', url: '/api/v1/cache/invalidate', headers: auth(), payload: payload as object });

describe('POST /invalidate', () => {
  it('by keys removes exactly those keys of that category', async () => {
    await seed();
    const res = await invalidate({ category: 'search_results', keys: ['user:1:a', 'other', 'never-set'] });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ removed: 2 });
    expect(await present()).toEqual(ALL.filter((k) => k !== 'search_results/user:1:a' && k !== 'search_results/other'));
  });

  it('by pattern removes the matching keys of that category only', async () => {
    await seed();
    const res = await invalidate({ category: 'search_results', pattern: 'user:1:*' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ removed: 2 });
    expect(await present()).toEqual(ALL.filter((k) => !k.startsWith('search_results/user:1:')));
  });

  it('by tags removes the tagged entries across categories', async () => {
    await seed();
    const res = await invalidate({ tags: ['user:1'] });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ removed: 3 });
    expect(await present()).toEqual(['search_results/user:2:a', 'search_results/other', 'context_bundles/user:1:a']);
  });

  it('by category alone clears that category only', async () => {
    await seed();
    const res = await invalidate({ category: 'context_bundles' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ removed: 2 });
    expect(await present()).toEqual(SEARCH.map((k) => `search_results/${k}`));
  });

  const bad: Array<[string, unknown, RegExp]> = [
    ['an unknown category', { category: 'nope_not_here', keys: ['a'] }, /nope_not_here.*search_results, context_bundles/],
    ['keys and pattern together', { category: 'search_results', keys: ['a'], pattern: 'user:*' }, /only one of keys, pattern or tags/],
    ['keys and tags together', { category: 'search_results', keys: ['a'], tags: ['user:1'] }, /only one of/],
    ['keys without a category', { keys: ['user:1:a'] }, /need a category/],
    ['pattern without a category', { pattern: 'user:*' }, /need a category/],
    ['tags with a category', { category: 'search_results', tags: ['user:1'] }, /tags are service-wide/],
    ['an empty body', {}, /category/],
    ['a pattern the core rejects (lone trailing backslash)', { category: 'search_results', pattern: 'user:1:\\' }, /backslash/],
    ['a pattern with a control character', { category: 'search_results', pattern: 'user:\n*' }, /pattern must not contain control characters/],
    ['keys as a string', { category: 'search_results', keys: 'user:1:a' }, /keys/],
    ['keys of numbers', { category: 'search_results', keys: [1, 2] }, /keys/],
    ['a numeric category', { category: 5 }, /category/],
    ['an unknown property', { category: 'search_results', everything: true }, /^body has unknown properties: "everything"$/],
    ['an empty keys array', { category: 'search_results', keys: [] }, /keys/],
    ['too many keys', { category: 'search_results', keys: Array.from({ length: 1001 }, (_, i) => `k${i}`) }, /keys/],
    ['a key over 1024 chars', { category: 'search_results', keys: ['x'.repeat(1025)] }, /keys/],
    ['too many tags', { tags: Array.from({ length: 101 }, (_, i) => `t${i}`) }, /tags/],
    ['a pattern over 512 chars', { category: 'search_results', pattern: `${'x'.repeat(512)}*` }, /pattern/],
  ];

  it.each(bad)('answers 400 to %s and removes nothing', async (_name, payload, message) => {
    await seed();
    const res = await invalidate(payload);
    expect(res.statusCode).toBe(400);
    const body = res.json();
    expect(body).toEqual({ statusCode: 400, code: expect.stringMatching(/^CACHE_(BAD_REQUEST|UNKNOWN_CATEGORY)$/), error: 'Bad Request', message: expect.any(String) });
    expect(body.message).toMatch(message);
    expect(await present()).toEqual(ALL);
  });

  it('names the unknown category with its own code', async () => {
    const res = await invalidate({ category: 'nope_not_here' });
    expect(res.json()).toMatchObject({ code: 'CACHE_UNKNOWN_CATEGORY' });
  });

  it('answers 400 to a missing body and to a non-JSON body', async () => {
    await seed();
    const none = await app.inject({ method: 'POST', url: '/api/v1/cache/invalidate', headers: auth() });
    expect(none.statusCode).toBe(400);
    const text = await app.inject({
      method: 'POST',
      url: '/api/v1/cache/invalidate',
      headers: { ...auth(), 'content-type': 'application/json' },
      payload: '{"category": ',
    });
    expect(text.statusCode).toBe(400);
    expect(await present()).toEqual(ALL);
  });
});

describe('DELETE /clear', () => {
  it("removes every key of this service and none of another service's on the same DB", async () => {
    const other = await buildApp(redis);
    try {
      await seed();
      const otherKey = other.cache.category('search_results').key('user:1:a');
      await other.cache.category('search_results').set('user:1:a', { mine: true }, { tags: ['user:1'] });

      const res = await app.inject({ method: 'DELETE', url: '/api/v1/cache/clear', headers: auth() });
      expect(res.statusCode).toBe(200);
      expect(res.json().removed).toBeGreaterThanOrEqual(ALL.length);
      expect(await present()).toEqual([]);
      const left = await scanKeys(raw, `${app.cache.service}:*`);
      // A clear keeps the stats hash and the replicas' flush markers (a stats flush may also land right after
      // it); entries and tag sets must be gone.
      expect(left.filter((k) => !k.endsWith(':__stats') && !k.includes(':__flushed:'))).toEqual([]);

      expect(await raw.exists(otherKey)).toBe(1);
      expect(await other.cache.category('search_results').get('user:1:a')).toEqual({ mine: true });
      const otherTagged = await other.inject({ method: 'POST', url: '/api/v1/cache/invalidate', headers: auth(), payload: { tags: ['user:1'] } });
      expect(otherTagged.json()).toEqual({ removed: 1 });
    } finally {
      await other.close();
    }
  });

  it('with ?category= removes that category only', async () => {
    await seed();
    const res = await app.inject({ method: 'DELETE', url: '/api/v1/cache/clear?category=search_results', headers: auth() });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ removed: SEARCH.length });
    expect(await present()).toEqual(BUNDLES.map((k) => `context_bundles/${k}`));
  });

  it('with an unknown ?category= answers 400 naming it and removes nothing', async () => {
    await seed();
    const res = await app.inject({ method: 'DELETE', url: '/api/v1/cache/clear?category=bogus', headers: auth() });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'CACHE_UNKNOWN_CATEGORY', message: expect.stringMatching(/bogus.*search_results/) });
    expect(await present()).toEqual(ALL);
  });
});

describe('with Redis down', () => {
  it('answers 503 CACHE_UNAVAILABLE to clear and invalidate instead of {removed: 0} (regression: an outage read as "nothing to remove")', async () => {
    const { startRedisServer } = await import('@aicache/test-redis');
    const server = await startRedisServer();
    const down = await buildApp({ url: server.url, host: server.host, port: server.port, source: 'redis-server', stop: () => server.stop() });
    try {
      await server.kill();
      for (const req of [
        { method: 'DELETE' as const, url: '/api/v1/cache/clear' },
        { method: 'POST' as const, url: '/api/v1/cache/invalidate', payload: { category: 'search_results', keys: ['a'] } },
        { method: 'POST' as const, url: '/api/v1/cache/invalidate', payload: { tags: ['t'] } },
      ]) {
        const res = await down.inject({ ...req, headers: auth() });
        expect(res.statusCode, `${req.method} ${req.url}`).toBe(503);
        expect(res.json()).toMatchObject({ code: 'CACHE_UNAVAILABLE' });
      }
      await server.restart();
      // Once Redis answers again, "nothing matched" is an honest 200.
      await expect.poll(async () => (await down.inject({ method: 'DELETE', url: '/api/v1/cache/clear', headers: auth() })).statusCode, { timeout: 10_000 }).toBe(200);
    } finally {
      await down.close();
      await server.stop();
    }
  });
});
