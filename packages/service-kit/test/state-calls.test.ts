import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServer } from '@aicache/test-redis';
import type { RedisClient } from '@aicache/cache';
import { createStateRedis, DEADLINE_GUARD, StateCalls, StateUnavailable } from '../src/index.js';
import { testConfig } from './helpers.js';

/** KEYS[1] = ARGV[2], behind the deadline guard. */
const SET_SCRIPT = `${DEADLINE_GUARD}
redis.call('SET', KEYS[1], ARGV[2])
return 1`;

let server: RedisServer;
let client: RedisClient;
let calls: StateCalls;

beforeAll(async () => {
  server = await startRedisServer();
  client = createStateRedis(testConfig({ REDIS_STATE_URL: server.url }));
  calls = new StateCalls(client, { name: 'test store', timeoutMs: 400, retryAfterSeconds: 2 });
});

afterAll(async () => {
  server?.resume();
  calls?.detach();
  client?.disconnect();
  await server?.stop();
});

const write = (key: string, value: string) =>
  calls.write(`write of ${key}`, (c, deadline) => c.eval(SET_SCRIPT, 1, key, deadline, value));

describe('StateCalls', () => {
  it('writes through a guarded script while Redis answers', async () => {
    expect(await write('k:ok', 'v')).toBe(1);
    expect(await client.get('k:ok')).toBe('v');
  });

  it('refuses a write that reaches Redis after its deadline', async () => {
    const past = Date.now() - 60_000;
    await expect(client.eval(SET_SCRIPT, 1, 'k:late', past, 'v')).rejects.toThrow(/^STATE_DEADLINE/);
    expect(await client.exists('k:late')).toBe(0);
  });

  it('a write that times out on a paused Redis answers 503 with Retry-After and never lands after the resume', async () => {
    server.pause();
    let failure: unknown;
    try {
      await write('k:paused', 'late');
    } catch (err) {
      failure = err;
    } finally {
      server.resume();
    }
    expect(failure).toBeInstanceOf(StateUnavailable);
    expect(failure).toMatchObject({ statusCode: 503, code: 'STATE_UNAVAILABLE', headers: { 'retry-after': '2' } });
    expect((failure as Error).message).toMatch(/^test store is unavailable: no answer to write of k:paused/);
    // The command was sent before the pause ended: Redis runs it now, after the deadline, and drops it.
    expect(await client.ping()).toBe('PONG');
    expect(await client.exists('k:paused')).toBe(0);
  });

  it('bounds a read on a paused Redis', async () => {
    server.pause();
    try {
      await expect(calls.read('read of k:ok', (c) => c.get('k:ok'))).rejects.toMatchObject({ code: 'STATE_UNAVAILABLE' });
    } finally {
      server.resume();
    }
    expect(await calls.read('read of k:ok', (c) => c.get('k:ok'))).toBe('v');
  });

  it('keeps the write deadline below the client command timeout, so ioredis never gives up first', async () => {
    const slow = new StateCalls(client, { name: 'slow store', timeoutMs: 60_000 });
    try {
      server.pause();
      const started = Date.now();
      await expect(slow.write('write of k:slow', (c, deadline) => c.eval(SET_SCRIPT, 1, 'k:slow', deadline, 'v'))).rejects.toMatchObject({
        code: 'STATE_UNAVAILABLE',
      });
      // The state client's commandTimeout is 2000 ms: the call ends near it, well before 60 s.
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      server.resume();
      slow.detach();
    }
    expect(await client.ping()).toBe('PONG');
    expect(await client.exists('k:slow')).toBe(0);
  });
});
