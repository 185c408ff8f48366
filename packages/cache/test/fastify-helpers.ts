import Fastify, { type FastifyInstance } from 'fastify';
import { Redis, type RedisOptions } from 'ioredis';
import { getTestRedis, uniqueName, type TestRedis } from '@aicache/test-redis';
import { cachePlugin, type CachePluginOptions } from '../src/fastify/index.js';

export const TOKEN = 'test-admin-token-0123456789';
export const auth = (token = TOKEN) => ({ authorization: `Bearer ${token}` });

/** The shared test Redis is used on this DB; every file isolates its keys with its own service name. */
export const TEST_DB = 5;

export function connectionOf(r: TestRedis, db = TEST_DB): RedisOptions {
  const u = new URL(r.url);
  return {
    host: u.hostname,
    port: Number(u.port || 6379),
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    tls: u.protocol === 'rediss:' ? {} : undefined,
    db,
  };
}

export function rawClient(r: TestRedis, db = TEST_DB): Redis {
  return new Redis({ ...connectionOf(r, db), lazyConnect: false, maxRetriesPerRequest: 1 });
}

export const categories = {
  search_results: { ttl: 3600 },
  context_bundles: { ttl: 1800 },
};

export async function buildApp(
  r: TestRedis,
  opts: Partial<CachePluginOptions> = {},
  before?: (app: FastifyInstance) => Promise<void>,
): Promise<FastifyInstance> {
  const app = Fastify({ logger: false });
  if (before) await before(app);
  await app.register(cachePlugin, {
    service: uniqueName('fastify'),
    categories,
    env: {},
    connection: connectionOf(r),
    adminToken: TOKEN,
    statsFlushIntervalMs: 50,
    ...opts,
  });
  await app.ready();
  return app;
}

export { getTestRedis, uniqueName, type TestRedis };
