import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, uniqueName, type RedisServer } from '@aicache/test-redis';
import type { Redis } from 'ioredis';
import { Cache } from '../src/index.js';
import { commandCalls, connectionOf, eventually, rawClient, sleep } from './helpers.js';

const categories = { search_results: { ttl: 600 } };

describe('when Redis fails (private servers)', () => {
  let server: RedisServer;
  const open: Array<Cache | Redis> = [];
  const track = <T extends Cache | Redis>(x: T): T => {
    open.push(x);
    return x;
  };

  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterEach(async () => {
    server.resume();
    for (const x of open.splice(0)) {
      if (x instanceof Cache) await x.close();
      else x.disconnect();
    }
  });
  afterAll(async () => {
    await server.stop();
  });

  it('a killed server turns calls into misses (no hang, errors counted), and the same Cache serves again after a restart', async () => {
    const cache = track(new Cache({ service: uniqueName('kill'), categories, connection: connectionOf(server) }));
    const cat = cache.category('search_results');
    expect(await cat.set('k', 'v')).toBe(true);
    await server.kill();
    expect(await cat.get('k')).toBeUndefined();
    expect(await cat.set('k', 'v2')).toBe(false);
    expect(await cat.has('k')).toBe(false);
    expect(await cat.mget(['k', 'j'])).toEqual([undefined, undefined]);
    expect(await cat.invalidatePattern('*')).toBe(0);
    expect(await cache.clear()).toBe(0);
    expect(await cache.invalidateTags(['t'])).toBe(0);
    expect(await cat.getOrSet('k', async () => 'from loader')).toBe('from loader');
    expect(cache.counters().search_results.errors).toBeGreaterThanOrEqual(4);
    expect((await cache.health()).status).toBe('down');
    const stats = await cache.stats();
    expect(stats.connected).toBe(false);
    expect(stats.keyspace_hits).toBeNull();

    await server.restart();
    await eventually(async () => (await cat.set('k', 'back')) && (await cat.get('k')) === 'back');
    expect((await cache.health()).status).toBe('up');
  });

  it('a paused (SIGSTOP) server turns calls into misses, for a client the cache created and for one it was handed', async () => {
    const handed = track(rawClient(server)); // default ioredis options: offline queue, no command timeout
    await handed.ping();
    const own = track(new Cache({ service: uniqueName('stop'), categories, connection: connectionOf(server), commandTimeoutMs: 200 }));
    const theirs = track(new Cache({ service: uniqueName('stop'), categories, client: handed, commandTimeoutMs: 200 }));
    for (const c of [own, theirs]) expect(await c.category('search_results').set('k', 'v')).toBe(true);

    server.pause();
    for (const c of [own, theirs]) {
      const cat = c.category('search_results');
      const results = await Promise.all([cat.get('k'), cat.set('k', 'x'), cat.has('k'), cat.delete('k'), cat.mget(['k'])]);
      expect(results).toEqual([undefined, false, false, false, [undefined]]);
      expect(c.counters().search_results.errors).toBe(5);
      expect((await c.health()).status).toBe('down');
    }
    server.resume();
    for (const c of [own, theirs]) {
      const cat = c.category('search_results');
      // (the timed-out delete landed on resume, so write first)
      await eventually(async () => (await cat.set('k2', 'w')) && (await cat.get('k2')) === 'w');
    }
  });

  it('the circuit opens after consecutive failures (calls stop reaching Redis) and closes again once Redis answers', async () => {
    const raw = track(rawClient(server));
    const cache = track(new Cache({ service: uniqueName('brk'), categories, connection: connectionOf(server), commandTimeoutMs: 150, breaker: { failureThreshold: 3, cooldownMs: 3000 }, statsFlushIntervalMs: 600_000 }));
    const cat = cache.category('search_results');
    await cat.set('k', 'v');
    await raw.config('RESETSTAT');
    server.pause();
    for (let i = 0; i < 3; i++) expect(await cat.get('k')).toBeUndefined();
    expect((await cache.health()).circuit).toBe('open');
    // While open, calls are answered as misses without being sent.
    for (let i = 0; i < 20; i++) expect(await cat.get('k')).toBeUndefined();
    expect(cache.counters().search_results.errors).toBe(23);
    server.resume();
    await eventually(async () => (await raw.ping()) === 'PONG');
    expect((await commandCalls(raw)).get).toBe(3);
    // After the cooldown the circuit is half-open (health: degraded); one probe goes through and closes it.
    await eventually(async () => (await cache.health()).circuit === 'half-open');
    expect((await cache.health()).status).toBe('degraded');
    await eventually(async () => (await cat.get('k')) === 'v');
    expect((await cache.health()).circuit).toBe('closed');
  });

  it('logs Redis trouble rate-limited and without secrets', async () => {
    const secretServer = await startRedisServer({ password: 'pa55-w0rd-secret' });
    try {
      const logs: unknown[] = [];
      const logger = { debug: () => undefined, info: () => undefined, error: (o: object) => logs.push(o), warn: (o: object) => logs.push(o) };
      const cache = track(new Cache({ service: uniqueName('log'), categories, connection: connectionOf(secretServer), logger }));
      const cat = cache.category('search_results');
      expect(await cat.set('k', 1)).toBe(true);
      await secretServer.kill();
      for (let i = 0; i < 50; i++) await cat.get('k');
      expect(cache.counters().search_results.errors).toBe(50);
      expect(logs.length).toBeGreaterThanOrEqual(1);
      expect(logs.length).toBeLessThanOrEqual(3);
      expect(JSON.stringify(logs)).not.toContain('pa55-w0rd-secret');
      expect(JSON.stringify(logs)).toContain(cache.service);
    } finally {
      await secretServer.stop();
    }
  });

  it('writes land when the clock was measured at a busy moment (a boot loading a model), and the measure is bettered', async () => {
    const cache = track(new Cache({ service: uniqueName('busy-boot'), categories, connection: connectionOf(server) }));
    // Listeners run in order: the runner sends TIME on 'ready', then this holds the event loop for 1.5 s, so its reply
    // is read late and the measured offset is ~750 ms early. Without the measure's error as a margin, every write
    // deadline was already past when it reached Redis, and every write was dropped for the life of the connection.
    cache.client.once('ready', () => {
      const until = Date.now() + 1500;
      while (Date.now() < until);
    });
    const cat = cache.category('search_results');
    await new Promise<void>((resolve) => (cache.client.status === 'ready' ? resolve() : cache.client.once('ready', () => resolve())));
    await new Promise((r) => setTimeout(r, 50));
    expect(await cat.set('k', 'v1')).toBe(true);
    expect(await cat.get('k')).toBe('v1');
    // A second later a write measures again, on a quiet loop; writes still land.
    await new Promise((r) => setTimeout(r, 1100));
    expect(await cat.set('k', 'v2')).toBe(true);
    await new Promise((r) => setTimeout(r, 50));
    expect(await cat.set('k', 'v3')).toBe(true);
    expect(await cat.get('k')).toBe('v3');
  });

  it('a write that timed out never lands later over a newer value (its connection was held up by a blocking call)', async () => {
    const slow = track(rawClient(server));
    await slow.ping();
    const service = uniqueName('late');
    const a = track(new Cache({ service, categories, client: slow, commandTimeoutMs: 200 }));
    const b = track(new Cache({ service, categories, connection: connectionOf(server) }));
    const ca = a.category('search_results');
    const cb = b.category('search_results');
    expect(await ca.set('warm', 1)).toBe(true); // script loaded, clock calibrated
    expect(await ca.set('k', 'old')).toBe(true);

    // The next command on A's connection is only read by Redis after this BLPOP returns (1 s).
    const blocked = slow.blpop(uniqueName('nothing'), 1);
    expect(await ca.set('k', 'stale')).toBe(false);
    expect(await cb.set('k', 'newer')).toBe(true);
    expect(await ca.set('gone', 'stale')).toBe(false);
    expect(await cb.delete('gone')).toBe(false);
    await blocked;
    await slow.ping(); // A's queued write has now been processed (and dropped)
    expect(await cb.get('k')).toBe('newer');
    expect(await cb.has('gone')).toBe(false);
  });

  it('a write sent to a paused server is dropped on resume, so it cannot win over an invalidation made meanwhile', async () => {
    const service = uniqueName('pause');
    const a = track(new Cache({ service, categories, connection: connectionOf(server), commandTimeoutMs: 200 }));
    const b = track(new Cache({ service, categories, connection: connectionOf(server), commandTimeoutMs: 200 }));
    const ca = a.category('search_results');
    const cb = b.category('search_results');
    expect(await ca.set('k', 'old')).toBe(true);
    await cb.get('k');
    server.pause();
    expect(await ca.set('k', 'stale')).toBe(false);
    await sleep(50);
    expect(await cb.delete('k')).toBe(false); // times out too, but lands on resume
    server.resume();
    await eventually(async () => (await a.health()).status !== 'down' && (await b.health()).status !== 'down');
    await eventually(async () => (await cb.set('probe', 1)) && (await cb.get('k')) === undefined);
    expect(await ca.get('k')).toBeUndefined();
  });

  it('does not queue a cache fill behind a read that just timed out (regression: a miss waited out two timeouts)', async () => {
    const service = uniqueName('fill');
    const cache = track(new Cache({ service, categories, connection: connectionOf(server), commandTimeoutMs: 200 }));
    const cat = cache.category('search_results');
    expect(await cat.set('warm', 1)).toBe(true);
    const admin = track(rawClient(server));
    await admin.config('RESETSTAT');
    server.pause();
    expect(await cat.get('k')).toBeUndefined(); // times out
    expect(await cat.set('k', 'loaded')).toBe(false); // refused at once: not sent into the stalled socket
    server.resume();
    await admin.ping();
    const calls = await commandCalls(admin);
    expect(calls.evalsha ?? 0).toBe(0);
    expect(calls.eval ?? 0).toBe(0);
    expect(await admin.exists(cat.key('k'))).toBe(0);
  });
});
