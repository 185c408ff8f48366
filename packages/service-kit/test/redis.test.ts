import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { startRedisServer, uniqueName, type RedisServer } from '@aicache/test-redis';
import { createService, registerRedis, StateDurabilityError, type ServiceApp } from '../src/index.js';
import { testConfig } from './helpers.js';

let durable: RedisServer;
let evicting: RedisServer;

beforeAll(async () => {
  [durable, evicting] = await Promise.all([
    startRedisServer({ args: ['--maxmemory-policy', 'noeviction'], appendfsync: 'everysec' }),
    startRedisServer({ args: ['--maxmemory-policy', 'allkeys-lru'] }),
  ]);
});

afterAll(async () => {
  await Promise.all([durable?.stop(), evicting?.stop()]);
});

async function service(env: Record<string, string>, stateClient?: Redis): Promise<ServiceApp> {
  const config = testConfig(env);
  const app = await createService({ name: 'redis-kit', version: '1.0.0', config, logger: false, defaultMetrics: false, underPressure: false });
  try {
    await registerRedis(app, config, {
      cache: { service: uniqueName('redis-kit'), categories: { things: { ttl: 60 } }, dbVariable: 'REDIS_DB_TEST', defaultDb: 3, rateLimit: false },
      state: { db: 4, ...(stateClient ? { client: stateClient } : {}) },
    });
  } catch (err) {
    await app.close();
    throw err;
  }
  return app;
}

describe('registerRedis', () => {
  it("names the connections app.redis.cache and app.redis.state, and readiness checks 'redis' and 'state'", async () => {
    const app = await service({ REDIS_URL: durable.url });
    try {
      expect(app.redis.cache).toBe(app.cache.client);
      expect(app.redis.state).toBeInstanceOf(Redis);
      expect(app.redis.state).not.toBe(app.redis.cache);
      expect((app.redis.state as Redis | undefined)?.options.db).toBe(4);
      const ready = await app.inject('/ready');
      expect(ready.json()).toMatchObject({ status: 'ready', checks: { redis: { ok: true }, state: { ok: true } } });
    } finally {
      await app.close();
    }
    expect(app.redis.state?.status).toBe('end');
  });

  it('closes while the Redis is away, without waiting on QUIT, and reports not_ready before', async () => {
    const server = await startRedisServer();
    const app = await service({ REDIS_URL: server.url });
    await server.stop();
    // The client learns of the close from its socket; on a busy machine that can come after stop() returns, and a
    // PING sent meanwhile waits out the check's timeout instead (a 503 too, with another detail).
    for (const deadline = Date.now() + 5000; app.redis.state?.status === 'ready' && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
    const ready = await app.inject('/ready');
    expect(ready.statusCode).toBe(503);
    expect(ready.json().checks.state).toMatchObject({ ok: false, detail: 'state Redis does not answer' });
    // A QUIT on the state client (offline queue on) would wait for a Redis that is gone and never resolve.
    await expect(app.close()).resolves.toBeUndefined();
    expect(app.redis.state?.status).not.toBe('ready');
  });

  it('boots while the state Redis is down (durability cannot be checked) and serves its ops routes', async () => {
    const server = await startRedisServer();
    const url = server.url;
    await server.stop();
    const app = await service({ REDIS_URL: url });
    try {
      expect((await app.inject('/health')).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('with STATE_REQUIRE_DURABLE=true refuses an evicting state Redis while registering', async () => {
    await expect(service({ REDIS_URL: durable.url, REDIS_STATE_URL: evicting.url, STATE_REQUIRE_DURABLE: 'true' })).rejects.toBeInstanceOf(StateDurabilityError);
    const app = await service({ REDIS_URL: durable.url, STATE_REQUIRE_DURABLE: 'true' });
    await app.close();
  });

  it('leaves a state client it was given open on close', async () => {
    const state = new Redis(durable.url, { db: 4 });
    try {
      const app = await service({ REDIS_URL: durable.url }, state);
      expect(app.redis.state).toBe(state);
      await app.close();
      expect(await state.ping()).toBe('PONG');
    } finally {
      state.disconnect();
    }
  });
});
