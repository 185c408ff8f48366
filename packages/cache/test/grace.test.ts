import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getTestRedis, uniqueName, type TestRedis } from '@aicache/test-redis';
import type { Redis } from 'ioredis';
import { Cache } from '../src/index.js';
import { connectionOf, eventually, rawClient, sleep } from './helpers.js';

describe('grace (stale-while-revalidate, stale-if-error) and early refresh', () => {
  let r: TestRedis;
  let raw: Redis;
  let cache: Cache<'search_results' | 'plain'>;
  const DB = 10;
  beforeAll(async () => {
    r = await getTestRedis();
    raw = rawClient(r, DB);
    cache = new Cache({ service: uniqueName('grace'), categories: { search_results: { ttl: 600, grace: 60 }, plain: { ttl: 600 } }, connection: connectionOf(r, DB), jitter: 0 });
  });
  afterAll(async () => {
    await cache.clear();
    await cache.close();
    raw.disconnect();
    await r.stop();
  });

  it('serves the stale value past its TTL while one background refresh replaces it', async () => {
    const cat = cache.category('search_results');
    let calls = 0;
    const loader = async () => {
      calls++;
      await sleep(100);
      return `v${calls}`;
    };
    expect(await cat.getOrSet('k', loader, { ttl: 0.3 })).toBe('v1');
    // Kept in Redis for ttl + grace.
    expect(await raw.pttl(cat.key('k'))).toBeGreaterThan(59_000);
    await sleep(400);
    expect(await cat.get('k')).toBeUndefined(); // a plain read does not serve stale entries
    // (the refreshed entry takes the TTL of the call that triggered the refresh)
    const stale = await Promise.all(Array.from({ length: 50 }, () => cat.getOrSet('k', loader, { ttl: 600 })));
    expect(stale.every((v) => v === 'v1')).toBe(true);
    await eventually(async () => (await cat.get('k')) === 'v2');
    expect(calls).toBe(2);
  });

  it('keeps serving the stale value when the refresh fails (stale-if-error)', async () => {
    const cat = cache.category('search_results');
    expect(await cat.getOrSet('e', async () => 'good', { ttl: 0.2 })).toBe('good');
    await sleep(300);
    let failures = 0;
    const failing = async (): Promise<string> => {
      failures++;
      throw new Error('upstream down');
    };
    expect(await cat.getOrSet('e', failing, { ttl: 0.2 })).toBe('good');
    await eventually(() => failures === 1);
    await sleep(50);
    expect(await cat.getOrSet('e', failing, { ttl: 0.2 })).toBe('good');
    expect(await raw.exists(cat.key('e'))).toBe(1);
  });

  it('without grace, an expired entry is a miss and the loader runs in the caller', async () => {
    const cat = cache.category('plain');
    expect(await cat.getOrSet('p', async () => 'one', { ttl: 0.2 })).toBe('one');
    await sleep(300);
    expect(await cat.getOrSet('p', async () => 'two', { ttl: 0.2 })).toBe('two');
  });

  it('a per-call grace: 0 never answers an entry past its TTL as a hit, though the category has grace', async () => {
    const cat = cache.category('search_results');
    expect(await cat.getOrSet('g0', async () => 'old', { ttl: 0.2 })).toBe('old');
    await sleep(300);
    // Still in Redis (kept for ttl + grace), but expired for a caller that allows no grace.
    expect(await raw.exists(cat.key('g0'))).toBe(1);
    let calls = 0;
    const result = await cat.getOrSetResult('g0', async () => {
      calls++;
      return 'new';
    }, { grace: 0 });
    expect(result).toEqual({ value: 'new', hit: false });
    expect(calls).toBe(1);
    expect(await cat.get('g0')).toBe('new');
  });

  it('XFetch refreshes a costly entry before it expires when earlyRefreshBeta is set, and not otherwise', async () => {
    const cat = cache.category('plain');
    let calls = 0;
    const costly = async () => {
      calls++;
      await sleep(150);
      return `x${calls}`;
    };
    expect(await cat.getOrSet('x', costly, { ttl: 30 })).toBe('x1');
    expect(await cat.getOrSet('x', costly, { ttl: 30 })).toBe('x1');
    expect(calls).toBe(1);
    // delta 150 ms * beta 1e6 dwarfs the 30 s left: refresh (almost) surely triggered, value still served.
    expect(await cat.getOrSet('x', costly, { ttl: 30, earlyRefreshBeta: 1e6 })).toBe('x1');
    await eventually(async () => (await cat.get('x')) === 'x2');
    expect(calls).toBe(2);
  });
});
