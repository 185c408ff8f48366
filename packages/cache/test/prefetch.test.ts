import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, uniqueName, type RedisServer } from '@aicache/test-redis';
import type { Redis } from 'ioredis';
import { Cache } from '../src/index.js';
import { commandCalls, connectionOf, eventually, rawClient } from './helpers.js';

const categories = { search_results: { ttl: 600 }, docs: { ttl: 600, l1MaxBytes: 1_000_000 } };
type Cat = keyof typeof categories;

/** GETs the server ran since `before` (INFO commandstats: the INFO calls themselves are not GETs). */
const getsSince = async (raw: Redis, before: Record<string, number>) => ((await commandCalls(raw)).get ?? 0) - (before.get ?? 0);

// A prefetch is the read a getOrSet starts with, sent earlier: a call that uses it reads nothing more, and one never
// used counts nothing, so hit/miss figures are those of the calls made.
describe('prefetch (private server)', () => {
  let server: RedisServer;
  let raw: Redis;
  const open: Array<Cache<Cat>> = [];
  const cacheOf = (extra: Partial<ConstructorParameters<typeof Cache>[0]> = {}): Cache<Cat> => {
    const c = new Cache<Cat>({ service: uniqueName('pre'), categories, env: {}, connection: connectionOf(server), statsFlushIntervalMs: 600_000, ...extra });
    open.push(c);
    return c;
  };

  beforeAll(async () => {
    server = await startRedisServer();
    raw = rawClient(server);
    raw.on('error', () => undefined);
  });
  afterEach(async () => {
    server.resume();
    for (const c of open.splice(0)) await c.close();
  });
  afterAll(async () => {
    raw.disconnect();
    await server.stop();
  });

  it('a hit through a prefetch is one GET and one hit; the loader does not run', async () => {
    const cache = cacheOf();
    const cat = cache.category('search_results');
    await cat.set('k', { v: 1 });
    const before = await commandCalls(raw);
    const pre = cat.prefetch('k');
    expect(pre.key).toBe('k');
    const r = await cat.wrapJsonResult('k', async () => ({ v: 'loaded' }), { prefetched: pre });
    expect(JSON.parse(r.value.toString())).toEqual({ v: 1 });
    expect(r.hit).toBe(true);
    expect(await getsSince(raw, before)).toBe(1);
    expect(cache.counters().search_results).toMatchObject({ hits: 1, misses: 0, errors: 0 });
  });

  it('a miss through a prefetch goes to the load without a second GET, counts one miss, and stores the value', async () => {
    const cache = cacheOf();
    const cat = cache.category('search_results');
    // What a miss reads without a prefetch (its read, and the lease script's own GETs).
    let before = await commandCalls(raw);
    await cat.wrapJsonResult('other', async () => ({ n: 0 }));
    const plainMiss = await getsSince(raw, before);
    before = await commandCalls(raw);
    let loads = 0;
    const r = await cat.wrapJsonResult('cold', async () => ({ n: ++loads }), { prefetched: cat.prefetch('cold') });
    expect(r).toMatchObject({ hit: false });
    expect(loads).toBe(1);
    expect(await getsSince(raw, before)).toBe(plainMiss);
    expect(cache.counters().search_results).toMatchObject({ hits: 0, misses: 2, sets: 2 });
    expect(await cat.get('cold')).toEqual(Buffer.from('{"n":1}'));
  });

  it('a prefetch never used counts neither a hit nor a miss', async () => {
    const cache = cacheOf();
    const cat = cache.category('search_results');
    await cat.set('there', 'x');
    const before = await commandCalls(raw);
    cat.prefetch('there');
    cat.prefetch('absent');
    await eventually(async () => (await getsSince(raw, before)) === 2);
    expect(cache.counters().search_results).toMatchObject({ hits: 0, misses: 0, errors: 0 });
  });

  it('is ignored by a call for another key or category, and used by one call only', async () => {
    const cache = cacheOf();
    const cat = cache.category('search_results');
    await cat.set('a', 'A');
    await cat.set('b', 'B');
    const pre = cat.prefetch('a');
    // Another key: its own read, its own answer.
    expect((await cat.getOrSetResult('b', async () => 'loaded', { prefetched: pre })).value).toBe('B');
    // Another category with the same key part: not this prefetch's entry.
    expect((await cache.category('docs').getOrSetResult('a', async () => 'docs-loaded', { prefetched: pre })).value).toBe('docs-loaded');
    await cat.set('a', 'A2');
    expect((await cat.getOrSetResult('a', async () => 'loaded', { prefetched: pre })).value).toBe('A');
    // Used once already: a second call reads again and sees the newer value.
    expect((await cat.getOrSetResult('a', async () => 'loaded', { prefetched: pre })).value).toBe('A2');
    expect(cache.counters().search_results).toMatchObject({ hits: 3, misses: 0 });
  });

  it('with Redis paused a prefetch does not reject; the call using it answers from its loader and counts one error and one miss', async () => {
    const cache = cacheOf({ commandTimeoutMs: 150 });
    const cat = cache.category('search_results');
    await cat.set('k', 'v');
    server.pause();
    const dropped = cat.prefetch('k');
    const used = cat.prefetch('k');
    const r = await cat.getOrSetResult('k', async () => 'from loader', { prefetched: used });
    expect(r).toEqual({ value: 'from loader', hit: false });
    expect(dropped.key).toBe('k');
    server.resume();
    expect(cache.counters().search_results).toMatchObject({ hits: 0, misses: 1, errors: 1 });
  });

  it('sends no GET while the in-process tier holds the key, and the call counts one L1 hit', async () => {
    const cache = cacheOf();
    const cat = cache.category('docs');
    await eventually(() => cat.l1Info().enabled);
    await cat.set('k', { v: 1 });
    await eventually(async () => {
      const before = cache.counters().docs.l1_hits ?? 0;
      await cat.get('k');
      return (cache.counters().docs.l1_hits ?? 0) === before + 1;
    });
    const counted = { ...cache.counters().docs };
    const before = await commandCalls(raw);
    const r = await cat.getOrSetResult('k', async () => 'loaded', { prefetched: cat.prefetch('k') });
    expect(r).toEqual({ value: { v: 1 }, hit: true });
    expect(await getsSince(raw, before)).toBe(0);
    expect(cache.counters().docs).toMatchObject({ hits: counted.hits + 1, l1_hits: (counted.l1_hits ?? 0) + 1, misses: counted.misses });
  });
});
