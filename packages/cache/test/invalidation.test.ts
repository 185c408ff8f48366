import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countKeys, startRedisServer, uniqueName, type RedisServer } from '@aicache/test-redis';
import type { Redis } from 'ioredis';
import { Cache } from '../src/index.js';
import { commandCalls, connectionOf, rawClient, seed } from './helpers.js';

const N = 100_000;
const categories = { search_results: { ttl: 3600 }, context_bundles: { ttl: 1800 } };

describe('invalidation on 100,000 keys (private server, FLUSHDB/FLUSHALL/KEYS renamed away)', () => {
  let server: RedisServer;
  let raw: Redis;
  let cache: Cache<'search_results' | 'context_bundles'>;
  let neighbour: Cache<'search_results' | 'context_bundles'>;

  beforeAll(async () => {
    server = await startRedisServer({ args: ['--rename-command', 'FLUSHDB', '', '--rename-command', 'FLUSHALL', '', '--rename-command', 'KEYS', ''] });
    raw = rawClient(server, 0);
    await expect(raw.call('FLUSHDB')).rejects.toThrow(/unknown command/);
    // Seeding writes 5,000 entries per script: give bulk writes room on a loaded test machine.
    cache = new Cache({ service: uniqueName('inv'), categories, connection: connectionOf(server, 0), commandTimeoutMs: 5000 });
    neighbour = new Cache({ service: `${cache.service}-n`, categories, connection: connectionOf(server, 0) });
  });
  afterAll(async () => {
    await cache.close();
    await neighbour.close();
    raw.disconnect();
    await server.stop();
  });

  async function resetStats(): Promise<void> {
    await raw.config('RESETSTAT');
  }
  async function assertNoBlockingCommands(): Promise<void> {
    const calls = await commandCalls(raw);
    expect(calls.keys).toBeUndefined();
    expect(calls.flushall).toBeUndefined();
    expect(calls.flushdb).toBeUndefined();
    expect(calls.scan ?? calls.sscan).toBeGreaterThan(0);
  }

  it('a pattern removes exactly the matching keys of its category and nothing else', async () => {
    const s = `${cache.service}:search_results:`;
    await seed(raw, `${s}doc:`, N);
    await seed(raw, `${s}other:`, 1000);
    await seed(raw, `${cache.service}:context_bundles:doc:`, 1000);
    await seed(raw, `${neighbour.service}:search_results:doc:`, 1000);
    // Over 50,000 keys in the DB: stats() does not SCAN them all to count.
    expect((await cache.stats()).service_stats.categories.search_results?.keys).toBeNull();
    await resetStats();
    expect(await cache.category('search_results').invalidatePattern('doc:*')).toBe(N);
    await assertNoBlockingCommands();
    expect(await countKeys(raw, `${s}*`)).toBe(1000);
    expect(await countKeys(raw, `${cache.service}:context_bundles:*`)).toBe(1000);
    expect(await countKeys(raw, `${neighbour.service}:*`)).toBe(1000);
  });

  it('a pattern cannot reach outside its category', async () => {
    // `*` in the key part is still under `<service>:context_bundles:`.
    expect(await cache.category('context_bundles').invalidatePattern('*:search_results:*')).toBe(0);
    expect(await countKeys(raw, `${cache.service}:search_results:*`)).toBe(1000);
  });

  it('clearing a category removes its keys only', async () => {
    await seed(raw, `${cache.service}:context_bundles:x:`, N - 1000);
    await resetStats();
    expect(await cache.category('context_bundles').clear()).toBe(N);
    await assertNoBlockingCommands();
    expect(await countKeys(raw, `${cache.service}:context_bundles:*`)).toBe(0);
    expect(await countKeys(raw, `${cache.service}:search_results:*`)).toBe(1000);
  });

  it('tags remove exactly the tagged entries', async () => {
    const cat = cache.category('context_bundles');
    for (let i = 0; i < N; i += 5000) {
      const ok = await cat.mset(Array.from({ length: 5000 }, (_, j) => ({ key: `t${i + j}`, value: i + j, tags: (i + j) % 2 === 0 ? ['even', 'all'] : ['all'] })));
      expect(ok).toBe(true);
    }
    await cat.set('untagged', 1);
    await neighbour.category('context_bundles').set('t0', 'n', { tags: ['even'] });
    expect(await raw.pttl(`${cache.service}:__tag:even`)).toBeGreaterThan(1_700_000);
    await resetStats();
    expect(await cache.invalidateTags(['even'])).toBe(N / 2);
    await assertNoBlockingCommands();
    expect(await cat.get('t1')).toBe(1);
    expect(await cat.get('t2')).toBeUndefined();
    expect(await neighbour.category('context_bundles').get('t0')).toBe('n');
    expect(await raw.exists(`${cache.service}:__tag:even`)).toBe(0);
    // Entries already removed through another tag are not counted twice.
    expect(await cache.invalidateTags(['all', 'even'])).toBe(N / 2);
    expect(await cat.get('untagged')).toBe(1);
  });

  it('clearing the service removes every key of the service and leaves the neighbour and its stats', async () => {
    await seed(raw, `${cache.service}:search_results:y:`, N - 1002);
    await cache.category('search_results').get('miss-to-count');
    await cache.flushStats();
    const before = await countKeys(raw, `${cache.service}:*`);
    await resetStats();
    const removed = await cache.clear();
    await assertNoBlockingCommands();
    // All but the stats hash and this replica's stats flush marker.
    expect(await countKeys(raw, `${cache.service}:__flushed:*`)).toBe(1);
    expect(removed).toBe(before - 2);
    expect(await countKeys(raw, `${cache.service}:*`)).toBe(2);
    expect(await raw.exists(`${cache.service}:__stats`)).toBe(1);
    expect(await countKeys(raw, `${neighbour.service}:*`)).toBeGreaterThanOrEqual(1001);
    const stats = await cache.stats();
    expect(stats.service_stats.categories.search_results?.misses).toBeGreaterThanOrEqual(1);
  });
});
