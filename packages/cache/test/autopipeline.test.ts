import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getTestRedis, uniqueName, type TestRedis } from '@aicache/test-redis';
import { Redis } from 'ioredis';
import { Cache } from '../src/index.js';
import { connectionOf } from './helpers.js';

describe('a client with auto-pipelining', () => {
  let r: TestRedis;
  beforeAll(async () => {
    r = await getTestRedis();
  });
  afterAll(async () => {
    await r.stop();
  });

  it('runs writes, leases and reads issued in the same tick (regression: scripts sent with callBuffer crashed ioredis 6 auto-pipelining)', async () => {
    const client = new Redis({ ...connectionOf(r, 11), enableAutoPipelining: true });
    const cache = new Cache({ service: uniqueName('ap'), categories: { c: { ttl: 60 } }, client });
    try {
      const cat = cache.category('c');
      const written = await Promise.all(Array.from({ length: 20 }, (_, i) => cat.set(`k${i}`, { i })));
      expect(written.every(Boolean)).toBe(true);
      const loaded = await Promise.all(Array.from({ length: 20 }, (_, i) => cat.getOrSet(`g${i}`, async () => i)));
      expect(loaded).toEqual(Array.from({ length: 20 }, (_, i) => i));
      expect(await Promise.all(Array.from({ length: 20 }, (_, i) => cat.get(`k${i}`)))).toEqual(Array.from({ length: 20 }, (_, i) => ({ i })));
    } finally {
      await cache.clear();
      await cache.close();
      client.disconnect();
    }
  });
});
