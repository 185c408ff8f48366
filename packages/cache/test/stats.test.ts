import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, uniqueName, type RedisServer } from '@aicache/test-redis';
import type { Redis } from 'ioredis';
import { Cache } from '../src/index.js';
import { commandCalls, connectionOf, rawClient } from './helpers.js';

const categories = { search_results: { ttl: 600 }, context_bundles: { ttl: 600 } };

describe('stats, counters and round trips (private server)', () => {
  let server: RedisServer;
  let raw: Redis;
  beforeAll(async () => {
    server = await startRedisServer();
    raw = rawClient(server, 1);
  });
  afterAll(async () => {
    raw.disconnect();
    await server.stop();
  });

  it('counts hits and misses exactly, summed over two replicas of the same service', async () => {
    const service = uniqueName('stats');
    const a = new Cache({ service, categories, connection: connectionOf(server, 1) });
    const b = new Cache({ service, categories, connection: connectionOf(server, 1) });
    const sa = a.category('search_results');
    const sb = b.category('search_results');
    await sa.set('present', 1);
    // Replica A: 4 misses, 6 hits. Replica B: 3 misses, 7 hits (one of them through mget).
    for (let i = 0; i < 4; i++) await sa.get(`absent${i}`);
    for (let i = 0; i < 6; i++) await sa.get('present');
    for (let i = 0; i < 2; i++) await sb.get(`absent${i}`);
    for (let i = 0; i < 6; i++) await sb.get('present');
    await sb.mget(['present', 'absent9']);
    expect(a.counters().search_results).toEqual({ hits: 6, misses: 4, sets: 1, deletes: 0, errors: 0 });
    expect(b.counters().search_results).toEqual({ hits: 7, misses: 3, sets: 0, deletes: 0, errors: 0 });

    await a.flushStats(); // B's stats() flushes B; A's counts come from its own flush
    const stats = await b.stats();
    expect(stats.service_stats.categories.search_results).toMatchObject({ hits: 13, misses: 7, sets: 1, hit_rate: 13 / 20, ttl: 600, keys: 1 });
    expect(stats.service_stats).toMatchObject({ hits: 13, misses: 7 });
    expect(stats.service_stats.categories.context_bundles).toMatchObject({ hits: 0, misses: 0, keys: 0 });
    // The same answer from the other replica.
    expect((await a.stats()).service_stats.categories.search_results).toMatchObject({ hits: 13, misses: 7 });

    expect(stats.connected).toBe(true);
    expect(stats.db).toBe(1);
    expect(typeof stats.keyspace_hits).toBe('number');
    expect(stats.memory_used).toMatch(/[0-9.]+[KMG]?/);
    expect(stats.server.version).toMatch(/^\d+\.\d+/);
    expect(stats.scope.server).toMatch(/whole server/);
    expect(stats.scope.service).toContain(service);
    await a.close();
    await b.close();
  });

  it('mget and mset take one round trip each', async () => {
    const cache = new Cache({ service: uniqueName('rt'), categories, connection: connectionOf(server, 1) });
    const cat = cache.category('search_results');
    await cat.set('warm', 1); // loads the write script
    await raw.config('RESETSTAT');
    await cat.mset(Array.from({ length: 200 }, (_, i) => ({ key: `k${i}`, value: { i }, tags: ['x'] })));
    const values = await cat.mget(Array.from({ length: 200 }, (_, i) => `k${i}`));
    expect(values.map((v) => (v as { i: number }).i)).toEqual(Array.from({ length: 200 }, (_, i) => i));
    const calls = await commandCalls(raw);
    expect(calls.mget).toBe(1);
    expect(calls.evalsha).toBe(1);
    expect(calls.get).toBeUndefined();
    expect(calls.set).toBe(200); // inside the one script
    await cache.close();
  });

  it('health answers up with a latency, and close() never quits a client it was handed', async () => {
    const client = rawClient(server, 1);
    const cache = new Cache({ service: uniqueName('own'), categories, client });
    const h = await cache.health();
    expect(h.status).toBe('up');
    expect(h.circuit).toBe('closed');
    expect(typeof h.latency_ms).toBe('number');
    await cache.category('search_results').set('x', 1);
    await cache.close();
    expect(await client.get('nothing')).toBeNull(); // still usable
    expect(client.status).toBe('ready');
    client.disconnect();

    const owned = new Cache({ service: uniqueName('own'), categories, connection: connectionOf(server, 1) });
    await owned.category('search_results').get('x');
    await owned.close();
    expect(owned.client.status).toBe('end');
  });
});
