import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import { startRedisServer, type RedisServer } from '@aicache/test-redis';
import { assertNoEviction, evictionPolicy, JobsRefusedError, registerJobs, DEFAULT_SETTINGS } from '../src/index.js';
import { Type } from 'typebox';

let evicting: RedisServer;
let safe: RedisServer;

beforeAll(async () => {
  evicting = await startRedisServer({ args: ['--maxmemory', '64mb', '--maxmemory-policy', 'allkeys-lru'] });
  safe = await startRedisServer({ args: ['--maxmemory-policy', 'noeviction'] });
});

afterAll(async () => {
  await evicting?.stop();
  await safe?.stop();
});

describe('the eviction check at boot', () => {
  it('reads maxmemory_policy from INFO memory', async () => {
    const a = new Redis(evicting.url);
    const b = new Redis(safe.url);
    try {
      expect(await evictionPolicy(a)).toBe('allkeys-lru');
      expect(await evictionPolicy(b)).toBe('noeviction');
      await expect(assertNoEviction(b)).resolves.toBeUndefined();
    } finally {
      a.disconnect();
      b.disconnect();
    }
  });

  it('refuses to register jobs on an evicting Redis, with a message naming the policy and the fix', async () => {
    const redis = new Redis(evicting.url);
    const app = Fastify({ logger: false });
    try {
      const err = await registerJobs(app, {
        service: 'evict-test',
        redis,
        settings: DEFAULT_SETTINGS,
        kinds: [{ name: 'noop', summary: 'noop', description: 'noop', body: Type.Object({}), run: async () => 'done' }],
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(JobsRefusedError);
      expect((err as Error).message).toMatch(/maxmemory-policy allkeys-lru/);
      expect((err as Error).message).toMatch(/noeviction/);
      // Nothing of the queue was written.
      expect(await redis.keys('jobs:*')).toEqual([]);
    } finally {
      await app.close();
      redis.disconnect();
    }
  });
});
