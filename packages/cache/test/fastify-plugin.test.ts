import Fastify from 'fastify';
import swagger from '@fastify/swagger';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scanKeys, startRedisServer } from '@aicache/test-redis';
import { cachePlugin } from '../src/fastify/index.js';
import {
  TOKEN,
  auth,
  buildApp,
  categories,
  connectionOf,
  getTestRedis,
  rawClient,
  uniqueName,
  type TestRedis,
} from './fastify-helpers.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await getTestRedis();
}, 60_000);
afterAll(async () => {
  await redis?.stop();
});

describe('GET /stats', () => {
  it('shows exactly the hits and misses made through app.cache, per category, and labels Redis figures server-wide', async () => {
    const app = await buildApp(redis);
    try {
      const search = app.cache.category('search_results');
      for (const k of ['a', 'b', 'c']) expect(await search.get(k)).toBeUndefined();
      await search.set('a', { n: 1 });
      expect(await search.get('a')).toEqual({ n: 1 });
      expect(await search.get('a')).toEqual({ n: 1 });

      const res = await app.inject({ method: 'GET', url: '/api/v1/cache/stats' });
      expect(res.statusCode).toBe(200);
      const stats = res.json();
      expect(stats.service).toBe(app.cache.service);
      expect(stats.connected).toBe(true);
      expect(stats.service_stats.categories.search_results).toMatchObject({ hits: 2, misses: 3, sets: 1, hit_rate: 40, ttl: 3600 });
      expect(stats.service_stats.categories.context_bundles).toMatchObject({ hits: 0, misses: 0, sets: 0 });
      expect(stats.service_stats).toMatchObject({ hits: 2, misses: 3, hit_rate: 40 });

      for (const seed of ['memory_used', 'keyspace_hits', 'keyspace_misses', 'hit_rate', 'total_commands_processed', 'connected_clients']) {
        expect(stats, seed).toHaveProperty(seed);
        expect(stats[seed], seed).not.toBeNull();
      }
      expect(stats.scope.server).toMatch(/server/i);
      expect(typeof stats.server.version).toBe('string');
    } finally {
      await app.close();
    }
  });

  it('serves every hit_rate as a percentage with one decimal, as the seed dashboards read it', async () => {
    const app = await buildApp(redis);
    try {
      const search = app.cache.category('search_results');
      await search.set('a', 1);
      expect(await search.get('a')).toBe(1);
      expect(await search.get('b')).toBeUndefined();
      expect(await search.get('c')).toBeUndefined();

      const stats = (await app.inject({ method: 'GET', url: '/api/v1/cache/stats' })).json();
      expect(stats.service_stats.categories.search_results.hit_rate).toBe(33.3);
      expect(stats.service_stats.hit_rate).toBe(33.3);
      expect(stats.service_stats.categories.context_bundles.hit_rate).toBe(0);
      // Server-wide: the same rule over Redis INFO keyspace_hits/keyspace_misses.
      const { keyspace_hits: kh, keyspace_misses: km } = stats;
      expect(stats.hit_rate).toBe(kh + km === 0 ? 0 : Math.round((1000 * kh) / (kh + km)) / 10);
      expect(stats.server.hit_rate).toBe(stats.hit_rate);
      for (const rate of [stats.hit_rate, stats.server.hit_rate, stats.service_stats.hit_rate]) {
        expect(rate).toBeGreaterThanOrEqual(0);
        expect(rate).toBeLessThanOrEqual(100);
        expect(Math.round(rate * 10)).toBe(rate * 10);
      }
    } finally {
      await app.close();
    }
  });

  it('is open: no token needed', async () => {
    const app = await buildApp(redis, { adminToken: undefined });
    try {
      expect((await app.inject({ method: 'GET', url: '/api/v1/cache/stats' })).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('serves the routes under a custom prefix', async () => {
    const app = await buildApp(redis, { prefix: '/admin/cache' });
    try {
      expect((await app.inject({ method: 'GET', url: '/admin/cache/stats' })).statusCode).toBe(200);
      expect((await app.inject({ method: 'GET', url: '/api/v1/cache/stats' })).statusCode).toBe(404);
    } finally {
      await app.close();
    }
  });
});

describe('GET /stats with state figures', () => {
  it('shows what the state option answers under `state`, apart from the cache categories', async () => {
    const app = await buildApp(redis, { state: async () => ({ agents: 3, agent_memory: { keys: 2, ttl: 60, sliding: true } }) });
    try {
      const stats = (await app.inject({ method: 'GET', url: '/api/v1/cache/stats' })).json();
      expect(stats.state).toEqual({ agents: 3, agent_memory: { keys: 2, ttl: 60, sliding: true } });
      expect(Object.keys(stats.service_stats.categories).sort()).toEqual(['context_bundles', 'search_results']);
    } finally {
      await app.close();
    }
  });

  it('shows state: null when the state figures fail, and answers 200 all the same', async () => {
    const app = await buildApp(redis, {
      state: async () => {
        throw new Error('state redis did not answer');
      },
    });
    try {
      const res = await app.inject({ method: 'GET', url: '/api/v1/cache/stats' });
      expect(res.statusCode).toBe(200);
      expect(res.json().state).toBeNull();
    } finally {
      await app.close();
    }
  });

  it('has no state field without the option', async () => {
    const app = await buildApp(redis);
    try {
      expect((await app.inject({ method: 'GET', url: '/api/v1/cache/stats' })).json()).not.toHaveProperty('state');
    } finally {
      await app.close();
    }
  });
});

describe('POST /test', () => {
  it('answers ok with the probe value and a positive TTL, and leaves no probe key', async () => {
    const app = await buildApp(redis);
    const raw = rawClient(redis);
    try {
      const res = await app.inject({ method: 'POST', url: '/api/v1/cache/test', headers: auth() });
      expect(res.statusCode).toBe(200);
      const body = res.json();
      expect(body.status).toBe('ok');
      expect(body.cached_value).toMatchObject({ probe: expect.stringMatching(/^__probe:/) });
      expect(body.ttl).toBeGreaterThan(0);

      const probeKey = app.cache.category('search_results').key(body.cached_value.probe);
      expect(probeKey.startsWith(`${app.cache.service}:search_results:__probe:`)).toBe(true);
      expect(await raw.exists(probeKey)).toBe(0);
      const left = await scanKeys(raw, `${app.cache.service}:*__probe*`);
      expect(left).toEqual([]);
    } finally {
      raw.disconnect();
      await app.close();
    }
  });
});

describe('POST /test on a service with no cache category', () => {
  it('probes a plain key under the service prefix and leaves nothing behind', async () => {
    const app = await buildApp(redis, { categories: {} });
    const raw = rawClient(redis);
    try {
      const res = await app.inject({ method: 'POST', url: '/api/v1/cache/test', headers: auth() });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toMatchObject({ status: 'ok', cached_value: { probe: expect.stringMatching(/^__probe:/) } });
      expect(res.json().ttl).toBeGreaterThan(0);
      const left = await scanKeys(raw, `${app.cache.service}:*`);
      expect(left.filter((k) => k.includes('__probe'))).toEqual([]);
    } finally {
      raw.disconnect();
      await app.close();
    }
  });
});

describe('with Redis down', () => {
  it('stats says not connected, /test answers 503 with status error, and neither hangs', async () => {
    const server = await startRedisServer();
    const app = await buildApp(redis, { connection: { host: server.host, port: server.port }, commandTimeoutMs: 100 });
    try {
      await server.kill();
      const stats = await app.inject({ method: 'GET', url: '/api/v1/cache/stats' });
      expect(stats.statusCode).toBe(200);
      expect(stats.json()).toMatchObject({ connected: false, memory_used: null, keyspace_hits: null });
      const probe = await app.inject({ method: 'POST', url: '/api/v1/cache/test', headers: auth() });
      expect(probe.statusCode).toBe(503);
      expect(probe.json()).toMatchObject({ status: 'error', cached_value: null, error: expect.any(String) });
    } finally {
      await app.close();
      await server.stop().catch(() => undefined);
    }
  });
});

describe('OpenAPI', () => {
  it('lists the four admin routes with their schemas under the cache tag', async () => {
    const app = await buildApp(redis, {}, async (a) => {
      await a.register(swagger, { openapi: { info: { title: 'test', version: '0.0.0' } } });
    });
    try {
      const doc = app.swagger() as unknown as {
        paths: Record<string, Record<string, { tags?: string[]; summary?: string; requestBody?: unknown; responses: Record<string, unknown>; parameters?: Array<{ name: string; in: string }> }>>;
      };
      const stats = doc.paths['/api/v1/cache/stats']?.get;
      const clear = doc.paths['/api/v1/cache/clear']?.delete;
      const invalidate = doc.paths['/api/v1/cache/invalidate']?.post;
      const probe = doc.paths['/api/v1/cache/test']?.post;
      for (const op of [stats, clear, invalidate, probe]) {
        expect(op).toBeDefined();
        expect(op?.tags).toEqual(['cache']);
        expect(op?.summary).toBeTruthy();
        expect(op?.responses['200']).toBeDefined();
      }
      const statsSchema = JSON.stringify(stats?.responses['200']);
      for (const field of ['service_stats', 'keyspace_hits', 'memory_used', 'categories', 'hit_rate', 'maxmemory_policy']) {
        expect(statsSchema).toContain(field);
      }
      const invalidateBody = JSON.stringify(invalidate?.requestBody);
      for (const field of ['category', 'keys', 'pattern', 'tags', '"maxItems":1000']) expect(invalidateBody).toContain(field);
      expect(clear?.parameters?.map((p) => `${p.in}:${p.name}`)).toEqual(['query:category']);
      expect(clear?.responses['401']).toBeDefined();
      expect(JSON.stringify(probe?.responses['200'])).toContain('cached_value');

      const res = await app.inject({ method: 'GET', url: '/api/v1/cache/stats' });
      expect(res.statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('declares adminSecurityScheme on every route behind the token, and on no other', async () => {
    const app = await buildApp(
      redis,
      {
        adminSecurityScheme: 'adminBearer',
        adminRoutes: async (scope) => {
          scope.delete('/things/:id', async () => ({ removed: 0 }));
        },
      },
      async (a) => {
        await a.register(swagger, {
          openapi: { info: { title: 'test', version: '0.0.0' }, components: { securitySchemes: { adminBearer: { type: 'http', scheme: 'bearer' } } } },
        });
      },
    );
    try {
      const doc = app.swagger() as unknown as { paths: Record<string, Record<string, { security?: unknown }>> };
      const declared = Object.fromEntries(
        Object.entries(doc.paths).flatMap(([path, item]) => Object.entries(item).map(([method, op]) => [`${method} ${path}`, op.security])),
      );
      expect(declared).toEqual({
        'get /api/v1/cache/stats': undefined,
        'delete /api/v1/cache/clear': [{ adminBearer: [] }],
        'post /api/v1/cache/invalidate': [{ adminBearer: [] }],
        'post /api/v1/cache/test': [{ adminBearer: [] }],
        'delete /api/v1/cache/things/{id}': [{ adminBearer: [] }],
      });
      // What it declares is what it does.
      expect((await app.inject({ method: 'DELETE', url: '/api/v1/cache/things/1' })).statusCode).toBe(401);
      expect((await app.inject({ method: 'DELETE', url: '/api/v1/cache/things/1', headers: auth() })).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });
});

describe('client ownership', () => {
  it('never closes a client it was handed', async () => {
    const client = rawClient(redis);
    try {
      const app = await buildApp(redis, { client, connection: undefined });
      expect(app.cache.client).toBe(client);
      await app.cache.category('search_results').set('k', 'v');
      await app.close();
      expect(client.status).toBe('ready');
      expect(await client.ping()).toBe('PONG');
    } finally {
      client.disconnect();
    }
  });

  it('closes the client it created', async () => {
    const app = await buildApp(redis);
    const client = app.cache.client;
    expect(await client.ping()).toBe('PONG');
    const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
    await app.close();
    await ended;
    expect(client.status).toBe('end');
    await expect(client.ping()).rejects.toThrow();
  });

  it('a bad TTL env variable stops registration naming the variable', async () => {
    const app = Fastify({ logger: false });
    void app.register(cachePlugin, {
      service: uniqueName('fastify'),
      categories,
      env: { CACHE_TTL_SEARCH_RESULTS: 'soon' },
      connection: connectionOf(redis),
      adminToken: TOKEN,
    });
    await expect(app.ready()).rejects.toThrow(/CACHE_TTL_SEARCH_RESULTS/);
    await app.close();
  });
});
