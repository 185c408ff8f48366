import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, uniqueName, type RedisServer } from '@aicache/test-redis';
import type { Redis } from 'ioredis';
import { Cache } from '../src/index.js';
import { commandCalls, connectionOf, eventually, rawClient } from './helpers.js';

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
    expect(stats.service_stats.categories.search_results).toMatchObject({ hits: 13, misses: 7, sets: 1, hit_rate: 65, ttl: 600, keys: 1 });
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

  it('a stats flush that timed out but landed is not added again by the next flush', async () => {
    const service = uniqueName('flush');
    const cache = new Cache({ service, categories, connection: connectionOf(server, 1), commandTimeoutMs: 100, statsFlushIntervalMs: 3_600_000 });
    const cat = cache.category('search_results');
    const misses = async (): Promise<number> => Number((await raw.hget(`${service}:__stats`, 'search_results:misses')) ?? 0);
    try {
      for (let i = 0; i < 3; i++) await cat.get(`absent${i}`);
      server.pause();
      try {
        await cache.flushStats(); // times out on our side; the command waits in the server's socket
      } finally {
        server.resume();
      }
      await eventually(async () => (await misses()) === 3);
      await cache.flushStats();
      expect(await misses()).toBe(3);
      for (let i = 0; i < 2; i++) await cat.get(`absent${i}`);
      await cache.flushStats();
      expect(await misses()).toBe(5);
      expect((await cache.stats()).service_stats.categories.search_results).toMatchObject({ misses: 5, hits: 0 });
    } finally {
      await cache.close();
    }
  });

  it('counts one hit or one miss per getOrSet call, as its result says: callers that joined a load and waits on another replica included', async () => {
    const service = uniqueName('joined');
    const a = new Cache({ service, categories, connection: connectionOf(server, 1) });
    const b = new Cache({ service, categories, connection: connectionOf(server, 1) });
    try {
      const sa = a.category('search_results');
      const sb = b.category('search_results');
      let open!: () => void;
      const gate = new Promise<void>((r) => (open = r));
      let started!: () => void;
      const loaderStarted = new Promise<void>((r) => (started = r));
      const loader = async () => {
        started();
        await gate;
        return 'loaded';
      };
      const results: Array<Promise<{ hit: boolean }>> = [sa.getOrSetResult('cold', loader)];
      await loaderStarted;
      // 49 callers join A's load; B waits on A's lease and gets A's value from Redis.
      for (let i = 0; i < 49; i++) results.push(sa.getOrSetResult('cold', loader));
      results.push(sb.getOrSetResult('cold', loader));
      await new Promise((r) => setTimeout(r, 50));
      open();
      // A load that fails: every caller sees the error and none was answered by the cache.
      const failing = async (): Promise<string> => {
        await new Promise((r) => setTimeout(r, 20));
        throw new Error('origin down');
      };
      const failed = await Promise.allSettled(Array.from({ length: 5 }, () => sa.getOrSetResult('broken', failing)));
      expect(failed.every((f) => f.status === 'rejected')).toBe(true);
      for (let i = 0; i < 10; i++) results.push(sb.getOrSetResult('cold', loader));
      results.push(sb.wrapJsonResult('json', async () => ({ n: 1 })), sb.wrapJsonResult('json', async () => ({ n: 1 })));

      const settled = await Promise.all(results);
      const answeredHits = settled.filter((x) => x.hit).length;
      const answeredMisses = settled.length - answeredHits + failed.length;
      expect(settled[50]).toMatchObject({ hit: true }); // B: another replica's load answered it

      await a.flushStats();
      const counted = (await b.stats()).service_stats.categories.search_results;
      expect(counted).toMatchObject({ hits: answeredHits, misses: answeredMisses });
      expect(counted).toMatchObject({ hits: 11, misses: 57 });
    } finally {
      await a.close();
      await b.close();
    }
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
