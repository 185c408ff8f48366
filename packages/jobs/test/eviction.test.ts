import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import { startRedisServer, type RedisServer } from '@aicache/test-redis';
import { assertNoEviction, evictionPolicy, registerJobs, DEFAULT_SETTINGS } from '../src/index.js';
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

  it('refuses jobs on an evicting Redis: every job route answers 503 naming the policy and the fix, and no job runs', async () => {
    const redis = new Redis(evicting.url);
    const app = Fastify({ logger: false });
    let ran = 0;
    try {
      await registerJobs(app, {
        service: 'evict-test',
        redis,
        settings: DEFAULT_SETTINGS,
        kinds: [{ name: 'noop', summary: 'noop', description: 'noop', body: Type.Object({}), run: async () => ++ran }],
      });
      await app.ready();
      for (const [method, url] of [
        ['POST', '/api/v1/jobs/noop'],
        ['GET', '/api/v1/jobs'],
        ['GET', '/api/v1/jobs/noop-1'],
        ['DELETE', '/api/v1/jobs/noop-1'],
      ] as const) {
        const res = await app.inject({ method, url, ...(method === 'POST' ? { payload: {} } : {}) });
        expect(res.statusCode, url).toBe(503);
        expect(res.json().message).toMatch(/maxmemory-policy allkeys-lru/);
        expect(res.json().message).toMatch(/noeviction/);
      }
      expect(app.jobs.worker?.isRunning()).toBe(false);
      // Nothing of the queue was written, once its connection is up (getVersion waits for whatever the queue writes
      // on connecting, then reads).
      await app.jobs.queue.getVersion();
      expect(await redis.keys('jobs:*')).toEqual([]);
      expect(ran).toBe(0);
    } finally {
      await app.close();
      redis.disconnect();
    }
  });

  it('does not hold up the boot while Redis does not answer', async () => {
    const down = await startRedisServer();
    const redis = new Redis(down.url, { maxRetriesPerRequest: null });
    await redis.ping();
    down.pause();
    const app = Fastify({ logger: false });
    try {
      const t0 = Date.now();
      await registerJobs(app, { service: 'paused-test', redis, settings: { ...DEFAULT_SETTINGS, closeGraceMs: 200 }, timeoutMs: 300, kinds: [] });
      await app.ready();
      expect(Date.now() - t0).toBeLessThan(2000);
      const res = await app.inject({ method: 'GET', url: '/api/v1/jobs' });
      expect(res.statusCode).toBe(503);
    } finally {
      down.resume();
      await app.close();
      redis.disconnect();
      await down.stop();
    }
  });
});
