import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getTestRedis, uniqueName, type TestRedis } from '@aicache/test-redis';
import type { Redis } from 'ioredis';
import { Cache } from '../src/index.js';
import { connectionOf, rawClient, sleep } from './helpers.js';

describe('getOrSet / wrapJson', () => {
  let r: TestRedis;
  let raw: Redis;
  let cache: Cache<'search_results'>;
  const DB = 8;
  beforeAll(async () => {
    r = await getTestRedis();
    raw = rawClient(r, DB);
    cache = new Cache({ service: uniqueName('gos'), categories: { search_results: { ttl: 600 } }, connection: connectionOf(r, DB) });
  });
  afterAll(async () => {
    await cache.clear();
    await cache.close();
    raw.disconnect();
    await r.stop();
  });

  it('runs the loader once for 1,000 concurrent callers on a cold key, and not at all once cached', async () => {
    const cat = cache.category('search_results');
    let calls = 0;
    const loader = async () => {
      calls++;
      await sleep(50);
      return { answer: 42 };
    };
    const results = await Promise.all(Array.from({ length: 1000 }, () => cat.getOrSet('cold', loader)));
    expect(calls).toBe(1);
    expect(results.every((v) => v.answer === 42)).toBe(true);
    expect(await cat.getOrSet('cold', loader)).toEqual({ answer: 42 });
    expect(calls).toBe(1);
    expect(await raw.exists(cat.key('cold'))).toBe(1);
    // No lease left behind.
    expect(await raw.exists(`${cache.service}:__lease:search_results:cold`)).toBe(0);
  });

  it('passes a loader error to every waiting caller and caches nothing', async () => {
    const cat = cache.category('search_results');
    let calls = 0;
    const loader = async (): Promise<string> => {
      calls++;
      await sleep(20);
      throw new Error('upstream down');
    };
    const settled = await Promise.allSettled(Array.from({ length: 50 }, () => cat.getOrSet('fails', loader)));
    expect(calls).toBe(1);
    expect(settled.every((s) => s.status === 'rejected' && (s.reason as Error).message === 'upstream down')).toBe(true);
    expect(await raw.exists(cat.key('fails'))).toBe(0);
    expect(await cat.getOrSet('fails', async () => 'ok now')).toBe('ok now');
  });

  it('wrapJson stores the JSON bytes and replays them on a hit', async () => {
    const cat = cache.category('search_results');
    let calls = 0;
    const loader = async () => {
      calls++;
      return { results: [{ id: 1, text: 'héllo' }], total: 1 };
    };
    const first = await Promise.all(Array.from({ length: 100 }, () => cat.wrapJson('http:/search?q=x', loader)));
    expect(calls).toBe(1);
    const body = JSON.stringify({ results: [{ id: 1, text: 'héllo' }], total: 1 });
    expect(first[0]?.toString('utf8')).toBe(body);
    const hit = await cat.wrapJson('http:/search?q=x', loader);
    expect(Buffer.isBuffer(hit)).toBe(true);
    expect(hit.toString('utf8')).toBe(body);
    expect(calls).toBe(1);
    // Stored as raw bytes behind a one-byte tag, not as a JSON string of JSON.
    expect(await raw.strlen(cat.key('http:/search?q=x'))).toBeLessThanOrEqual(Buffer.byteLength(body) + 13);
  });

  it('caches falsy results (0, "", null, false) instead of reloading them', async () => {
    const cat = cache.category('search_results');
    for (const [i, v] of [0, '', null, false].entries()) {
      let calls = 0;
      const loader = async () => {
        calls++;
        return v;
      };
      expect(await cat.getOrSet(`falsy${i}`, loader)).toBe(v);
      expect(await cat.getOrSet(`falsy${i}`, loader)).toBe(v);
      expect(calls).toBe(1);
    }
  });
});

describe('getOrSetResult / wrapJsonResult', () => {
  it('says miss to the caller that ran the loader and to everyone who waited on it, hit afterwards (regression: waiters were told hit)', async () => {
    const r = await getTestRedis();
    const cache = new Cache({ service: uniqueName('res'), categories: { search_results: { ttl: 600 } }, connection: connectionOf(r, 8) });
    try {
      const cat = cache.category('search_results');
      const first = await Promise.all(Array.from({ length: 20 }, () => cat.wrapJsonResult('q', async () => ({ n: 1 }))));
      expect(first.map((x) => x.hit)).toEqual(Array.from({ length: 20 }, () => false));
      expect(first[0]!.value.toString()).toBe('{"n":1}');
      const again = await cat.getOrSetResult('q', async () => ({ n: 2 }));
      expect(again.hit).toBe(true);
      expect(Buffer.isBuffer(again.value) && again.value.toString()).toBe('{"n":1}');
    } finally {
      await cache.clear();
      await cache.close();
      await r.stop();
    }
  });
});

describe('a loader that started before an invalidation', () => {
  let r: TestRedis;
  let cache: Cache<'search_results' | 'context_bundles'>;
  const DB = 8;
  beforeAll(async () => {
    r = await getTestRedis();
    cache = new Cache({ service: uniqueName('gen'), categories: { search_results: { ttl: 600 }, context_bundles: { ttl: 600 } }, connection: connectionOf(r, DB) });
  });
  afterAll(async () => {
    await cache.clear();
    await cache.close();
    await r.stop();
  });

  const invalidations: Array<[string, (c: Cache<'search_results' | 'context_bundles'>, key: string) => Promise<unknown>]> = [
    ['invalidate', (c, key) => c.category('search_results').invalidate([key])],
    ['delete', (c, key) => c.category('search_results').delete(key)],
    ['invalidatePattern', (c) => c.category('search_results').invalidatePattern('doc*')],
    ['category clear', (c) => c.category('search_results').clear()],
    ['invalidateTags', (c) => c.invalidateTags(['doc'])],
    ['service clear', (c) => c.clear()],
  ];

  it.each(invalidations)('does not store its (older) result after %s', async (_name, invalidate) => {
    const cat = cache.category('search_results');
    const key = uniqueName('doc');
    let release!: () => void;
    const gate = new Promise<void>((res) => (release = res));
    let started!: () => void;
    const loaderRunning = new Promise<void>((res) => (started = res));
    const pending = cat.getOrSet(key, async () => {
      started();
      await gate;
      return 'read before the invalidation';
    }, { tags: ['doc'] });
    await loaderRunning;
    await invalidate(cache, key);
    release();
    expect(await pending).toBe('read before the invalidation'); // the caller still gets its answer
    expect(await cat.get(key)).toBeUndefined(); // but it was not cached
    // The next load is stored as usual.
    expect(await cat.getOrSet(key, async () => 'fresh')).toBe('fresh');
    expect(await cat.get(key)).toBe('fresh');
  });

  it('other categories are not affected by an invalidation elsewhere', async () => {
    const other = cache.category('context_bundles');
    let release!: () => void;
    const gate = new Promise<void>((res) => (release = res));
    const pending = other.getOrSet('b', async () => {
      await gate;
      return 'kept';
    });
    await sleep(50);
    await cache.category('search_results').invalidate(['anything']);
    release();
    await pending;
    expect(await other.get('b')).toBe('kept');
  });
});
