import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getTestRedis, startRedisServer, uniqueName, type RedisServer, type TestRedis } from '@aicache/test-redis';
import type { Redis } from 'ioredis';
import { CacheTimeoutError, CircuitOpenError } from '../src/errors.js';
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

// getBuffer, the hit path's GET, hands its own command to the client rather than calling client.getBuffer: it must
// keep every guarantee of run() (bounded, counted by the circuit and the latency figures, refused while open).
describe('RedisRunner.getBuffer', () => {
  let server: RedisServer;
  let client: Redis;
  let runner: RedisRunner;
  const key = uniqueName('runner-get');
  beforeAll(async () => {
    server = await startRedisServer();
    client = rawClient(server, 0);
    client.on('error', () => undefined);
    await client.set(key, Buffer.from([0, 1, 2, 255]));
    runner = new RedisRunner(client, 150, { failureThreshold: 2, cooldownMs: 60_000 });
  });
  afterAll(async () => {
    runner.detach();
    client.disconnect();
    await server.stop();
  });

  it('answers the stored bytes as a Buffer, null for a missing key, and counts each call in the latency figures', async () => {
    await runner.calibrate(); // its TIME call, sent on connect, counts too
    const before = runner.latency.snapshot().count;
    expect(await runner.getBuffer(key)).toEqual(Buffer.from([0, 1, 2, 255]));
    expect(await runner.getBuffer(`${key}:missing`)).toBeNull();
    expect(runner.latency.snapshot().count - before).toBe(2);
  });

  it('a reply error is the server answering: rejected, but not counted against the circuit', async () => {
    const list = `${key}:list`;
    await client.rpush(list, 'x');
    await expect(runner.getBuffer(list)).rejects.toThrow(/WRONGTYPE/);
    expect(runner.breaker.failedRecently()).toBe(false);
  });

  it('a server that stops answering: each GET times out within its bound, the circuit opens and refuses the next at once; a late reply is ignored', async () => {
    server.pause();
    try {
      const started = performance.now();
      const first = runner.getBuffer(key);
      const second = runner.getBuffer(key);
      await expect(first).rejects.toBeInstanceOf(CacheTimeoutError);
      await expect(second).rejects.toBeInstanceOf(CacheTimeoutError);
      // Bounded by the runner's own deadline (150 ms), not by ioredis (no commandTimeout on this client).
      expect(performance.now() - started).toBeLessThan(5000);
      expect(runner.breaker.state).toBe('open');
      await expect(runner.getBuffer(key)).rejects.toBeInstanceOf(CircuitOpenError);
    } finally {
      server.resume();
    }
    // The two GETs sent before the pause are answered now, after they timed out: the runner goes on, and a fresh
    // runner on the same client reads the right value (replies were not shifted onto other calls).
    const fresh = new RedisRunner(client, 1000);
    try {
      expect(await fresh.getBuffer(key)).toEqual(Buffer.from([0, 1, 2, 255]));
    } finally {
      fresh.detach();
    }
  });
});
