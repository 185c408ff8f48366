import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getTestRedis, uniqueName, type TestRedis } from '@aicache/test-redis';
import { Cache } from '../src/index.js';
import type { CacheResult, CategoryCache } from '../src/types.js';
import { connectionOf, eventually, sleep } from './helpers.js';

type Name = 'search_results' | 'context_bundles';
const categories = { search_results: { ttl: 600, grace: 60 }, context_bundles: { ttl: 600 } };

function gate(): { open: () => void; wait: Promise<void> } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { open, wait };
}

/** A getOrSet whose loader answers `value` once the gate opens; resolves `started` when the loader runs. */
function slowLoad(cat: CategoryCache, key: string, value: string): { result: Promise<CacheResult<string>>; started: Promise<void>; open: () => void } {
  const g = gate();
  let started!: () => void;
  const startedP = new Promise<void>((r) => (started = r));
  const result = cat.getOrSetResult(
    key,
    async () => {
      started();
      await g.wait;
      return value;
    },
    { tags: ['corpus'] },
  );
  return { result, started: startedP, open: g.open };
}

describe('an invalidation detaches the in-flight loads of what it removes', () => {
  let r: TestRedis;
  let cache: Cache<Name>;
  beforeAll(async () => {
    r = await getTestRedis();
    cache = new Cache<Name>({ service: uniqueName('detach'), categories, connection: connectionOf(r, 11), jitter: 0 });
  });
  afterAll(async () => {
    await cache.clear();
    await cache.close();
    await r.stop();
  });

  const invalidations: Array<[string, (cat: CategoryCache, key: string) => Promise<unknown>]> = [
    ['delete', (cat, key) => cat.delete(key)],
    ['invalidate', (cat, key) => cat.invalidate([key, 'other'])],
    ['invalidatePattern', (cat, key) => cat.invalidatePattern(`${key.slice(0, 4)}*`)],
    ['category clear', (cat) => cat.clear()],
    ['invalidateTags', () => cache.invalidateTags(['corpus'])],
    ['service clear', () => cache.clear()],
  ];

  it.each(invalidations)('a getOrSet that starts after %s resolved does not join the older load', async (_name, invalidate) => {
    const cat = cache.category('search_results');
    const key = `k-${uniqueName('x')}`;
    const old = slowLoad(cat, key, 'old');
    await old.started;
    // A caller that joined before the invalidation keeps the answer of the load it joined.
    const joinedBefore = cat.getOrSetResult(key, async () => 'never runs');

    await invalidate(cat, key);
    let newCalls = 0;
    const after = cat.getOrSetResult(key, async () => {
      newCalls++;
      return 'new';
    });
    old.open();

    expect(await old.result).toEqual({ value: 'old', hit: false });
    expect(await joinedBefore).toEqual({ value: 'old', hit: false });
    expect(await after).toEqual({ value: 'new', hit: false });
    expect(newCalls).toBe(1);
    // The detached load's write is dropped (its generation moved): what stays is the new value.
    expect(await cat.get(key)).toBe('new');
  });

  it('a background refresh running during a delete does not hold back the refresh of the entry written after it', async () => {
    const cat = cache.category('search_results');
    const key = uniqueName('refresh');
    expect(await cat.getOrSet(key, async () => 'v1', { ttl: 0.2 })).toBe('v1');
    await sleep(300);
    const hung = gate();
    // Stale within grace: served, and a refresh starts whose loader hangs.
    expect(await cat.getOrSet(key, async () => {
      await hung.wait;
      return 'from the old refresh';
    }, { ttl: 0.2 })).toBe('v1');

    expect(await cat.delete(key)).toBe(true);
    expect(await cat.getOrSetResult(key, async () => 'v2', { ttl: 0.2 })).toEqual({ value: 'v2', hit: false });
    await sleep(300);
    // v2 is stale within grace: this call must start a refresh of its own.
    expect(await cat.getOrSet(key, async () => 'v3', { ttl: 600 })).toBe('v2');
    await eventually(async () => (await cat.get(key)) === 'v3', 3000);

    // The old refresh finishes now; its write is dropped (generation moved by the delete).
    hung.open();
    await sleep(200);
    expect(await cat.get(key)).toBe('v3');
  });
});
