import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getTestRedis, uniqueName, type TestRedis } from '@aicache/test-redis';
import type { Redis } from 'ioredis';
import { CacheTimeoutError } from '../src/errors.js';
import { RedisRunner } from '../src/runner.js';
import { rawClient } from './helpers.js';

// The runner bounds calls with one timer per timeout value, not one per call: a call that never answers must still
// time out when the calls around it were answered, and a call with another timeout must keep its own.
describe('RedisRunner deadlines', () => {
  let r: TestRedis;
  let client: Redis;
  let runner: RedisRunner;
  const key = uniqueName('runner');
  beforeAll(async () => {
    r = await getTestRedis();
    client = rawClient(r, 6);
    await client.set(key, 'v');
    runner = new RedisRunner(client, 150);
  });
  afterAll(async () => {
    runner.detach();
    await client.del(key);
    client.disconnect();
    await r.stop();
  });

  it('a call that never answers times out even when the calls before and after it were answered', async () => {
    const before = runner.run((c) => c.get(key));
    const stuck = runner.run(() => new Promise<string>(() => undefined));
    const after = runner.run((c) => c.get(key));
    const longer = runner.probe(() => new Promise<string>((res) => setTimeout(() => res('late but within its bound'), 300)), 1000);
    expect(await before).toBe('v');
    expect(await after).toBe('v');
    await expect(stuck).rejects.toBeInstanceOf(CacheTimeoutError);
    expect(await longer).toBe('late but within its bound');
    // The runner goes on answering after a timeout.
    expect(await runner.run((c) => c.get(key))).toBe('v');
  });

  it('calls that keep failing to answer each time out, in turn, and count against the circuit', async () => {
    const stuck = [0, 1, 2].map(() => runner.probe(() => new Promise<string>(() => undefined), 100));
    for (const s of stuck) await expect(s).rejects.toBeInstanceOf(CacheTimeoutError);
    const failures = [0, 1].map(() => runner.run(() => new Promise<string>(() => undefined)));
    for (const f of failures) await expect(f).rejects.toBeInstanceOf(CacheTimeoutError);
    expect(runner.breaker.failedRecently()).toBe(true);
    // A success resets the failure count.
    expect(await runner.run((c) => c.get(key))).toBe('v');
    expect(runner.breaker.failedRecently()).toBe(false);
  });
});
