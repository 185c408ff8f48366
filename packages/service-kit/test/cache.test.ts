import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getTestRedis, startRedisServer, uniqueName, type TestRedis } from '@aicache/test-redis';
import { Redis } from 'ioredis';
import { Type } from 'typebox';
import { BaseConfig, createStateRedis, loadConfig, registerCache, type ServiceApp } from '../src/index.js';
import { buildTestApp } from './helpers.js';

const Schema = Type.Object({
  ...BaseConfig.properties,
  REDIS_DB_KIT_TEST: Type.Integer({ default: 9, minimum: 0, maximum: 15 }),
  CACHE_TTL_FILES: Type.Optional(Type.Integer({ minimum: 1 })),
});

let redis: TestRedis;
beforeAll(async () => {
  redis = await getTestRedis();
});
afterAll(async () => {
  await redis?.stop();
});

async function appWithCache(env: Record<string, string>, service = uniqueName('kit')): Promise<ServiceApp> {
  const app = await buildTestApp(service);
  await registerCache(app, loadConfig(Schema, { env: { NODE_ENV: 'test', LOG_LEVEL: 'silent', ...env } }), {
    service,
    categories: { embeddings: { ttl: 100 }, files: { ttl: 200 } },
    dbVariable: 'REDIS_DB_KIT_TEST',
    defaultDb: 9,
  });
  return app;
}

describe('registerCache', () => {
  it('connects to the DB from the service variable and takes TTLs from CACHE_TTL_*', async () => {
    const app = await appWithCache({ REDIS_URL: redis.url, REDIS_DB_KIT_TEST: '7', CACHE_TTL_FILES: '33', CACHE_TTL_JITTER: '0' });
    try {
      await app.cache.category('files').set('a', 1);
      const raw = new Redis(redis.url, { db: 7 });
      expect(await raw.ttl(app.cache.category('files').key('a'))).toBe(33);
      await raw.quit();
    } finally {
      await app.close();
    }
  });

  it('counts cache hits and misses per category in /metrics', async () => {
    const app = await appWithCache({ REDIS_URL: redis.url });
    try {
      const emb = app.cache.category('embeddings');
      await emb.get('missing');
      await emb.set('k', 'v');
      await emb.get('k');
      await emb.get('k');
      const body = (await app.inject('/metrics')).body;
      expect(body).toContain(`cache_hits_total{service="${app.cache.service}",category="embeddings"} 2`);
      expect(body).toContain(`cache_misses_total{service="${app.cache.service}",category="embeddings"} 1`);
    } finally {
      await app.close();
    }
  });

  it('reports a dead cache Redis as degraded, not unready', async () => {
    const server = await startRedisServer();
    const app = await appWithCache({ REDIS_URL: server.url });
    try {
      expect((await app.inject('/ready')).json()).toMatchObject({ status: 'ready' });
      await server.kill();
      const res = await app.inject('/ready');
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ status: 'degraded', checks: { redis: { ok: false, degraded: true } } });
    } finally {
      await app.close();
      await server.stop();
    }
  });

  it('rate-limits the admin routes and GET /stats each on a budget of its own, as CACHE_ADMIN_ and CACHE_STATS_RATE_LIMIT_MAX say', async () => {
    const app = await appWithCache({ REDIS_URL: redis.url, CACHE_ADMIN_TOKEN: 'kit-token', CACHE_ADMIN_RATE_LIMIT_MAX: '2', CACHE_STATS_RATE_LIMIT_MAX: '4' });
    try {
      const stats = () => app.inject({ method: 'GET', url: '/api/v1/cache/stats' });
      const call = () => app.inject({ method: 'POST', url: '/api/v1/cache/test', headers: { authorization: 'Bearer kit-token' } });
      for (let i = 0; i < 4; i++) expect((await stats()).statusCode).toBe(200);
      expect((await stats()).statusCode).toBe(429);
      expect((await call()).statusCode).toBe(200);
      expect((await call()).statusCode).toBe(200);
      expect((await call()).statusCode).toBe(429);
    } finally {
      await app.close();
    }
  });

  it('hands REDIS_SOCKET_CONNECT_TIMEOUT and REDIS_SOCKET_TIMEOUT (seconds) to the cache and the state connections in ms', async () => {
    const env = { REDIS_URL: redis.url, REDIS_SOCKET_CONNECT_TIMEOUT: '1.5', REDIS_SOCKET_TIMEOUT: '5' };
    const app = await appWithCache(env);
    const state = createStateRedis(loadConfig(Schema, { env }), { db: 9 });
    try {
      expect(app.cache.client.options).toMatchObject({ connectTimeout: 1500, socketTimeout: 5000 });
      expect(state.options).toMatchObject({ connectTimeout: 1500, socketTimeout: 5000 });
      expect(await state.ping()).toBe('PONG');
    } finally {
      state.disconnect();
      await app.close();
    }
  });
});
