import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getTestRedis, startRedisServer, uniqueName, type TestRedis } from '@aicache/test-redis';
import { Cache } from '../src/index.js';
import { connectionOf } from './helpers.js';

const DB = 11;
let r: TestRedis;
beforeAll(async () => {
  r = await getTestRedis();
});
afterAll(async () => {
  await r.stop();
});

describe('Cache.opsFigures', () => {
  it('counts a getOrSet that waited on another replica holding the lease, and none for the holder', async () => {
    const service = uniqueName('lease-wait');
    const categories = { things: { ttl: 60 } };
    const a = new Cache({ service, categories, connection: connectionOf(r, DB) });
    const b = new Cache({ service, categories, connection: connectionOf(r, DB) });
    try {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const holder = a.category('things').getOrSet('k', async () => {
        await gate;
        return 'from-a';
      });
      // Let a take the lease before b asks.
      await new Promise((res) => setTimeout(res, 50));
      const waiter = b.category('things').getOrSet('k', async () => 'from-b');
      setTimeout(release, 50);
      expect(await Promise.all([holder, waiter])).toEqual(['from-a', 'from-a']);
      expect(a.opsFigures().leaseWaits).toEqual({ things: 0 });
      expect(b.opsFigures().leaseWaits).toEqual({ things: 1 });
      await a.category('things').clear();
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('times the Redis calls that went out and reports the circuit: closed, then open once Redis is gone', async () => {
    const server = await startRedisServer();
    const cache = new Cache({ service: uniqueName('ops'), categories: { things: { ttl: 60 } }, connection: connectionOf(server), commandTimeoutMs: 100 });
    try {
      await cache.category('things').set('k', 'v');
      await cache.category('things').get('k');
      const up = cache.opsFigures();
      expect(up.circuit).toBe('closed');
      expect(up.commandLatency.count).toBeGreaterThanOrEqual(2);
      expect(up.commandLatency.counts.reduce((x, y) => x + y, 0)).toBe(up.commandLatency.count);
      expect(up.commandLatency.sumSeconds).toBeGreaterThan(0);

      await server.kill();
      for (let i = 0; i < 100 && cache.client.status === 'ready'; i++) await new Promise((res) => setTimeout(res, 20));
      for (let i = 0; i < 8; i++) await cache.category('things').get('k');
      expect(cache.opsFigures().circuit).toBe('open');
    } finally {
      await cache.close();
      await server.stop();
    }
  });
});
