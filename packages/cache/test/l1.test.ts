import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import Fastify from 'fastify';
import { startRedisServer, uniqueName, type RedisServer } from '@aicache/test-redis';
import type { Redis } from 'ioredis';
import { Cache, CacheConfigError, resolveCategories } from '../src/index.js';
import { cachePlugin } from '../src/fastify/index.js';
import type { CategoryCache } from '../src/types.js';
import { commandCalls, connectionOf, eventually, rawClient, sleep } from './helpers.js';

// The L1 cap (60 s default) is far beyond every wait below: whatever a replica stops serving, it stopped because
// it was told (or because it lost its subscription), never because its copy expired.
const categories = { docs: { ttl: 600, l1MaxBytes: 1_000_000 }, plain: { ttl: 600 } };
type Cat = keyof typeof categories;

/** Bound of a wait for a message or a reconnect: a hang detector, not a timing requirement. */
const WAIT_MS = 5000;

describe('L1 in-process tier (private server)', () => {
  let server: RedisServer;
  let raw: Redis;
  const open: Array<Cache<string>> = [];
  const replica = (service: string, extra: Partial<ConstructorParameters<typeof Cache>[0]> = {}): Cache<Cat> => {
    const c = new Cache<Cat>({ service, categories, env: {}, connection: connectionOf(server), statsFlushIntervalMs: 600_000, ...extra });
    open.push(c);
    return c;
  };
  const enabled = (c: Cache<Cat>, cat: Cat = 'docs') => eventually(() => c.category(cat).l1Info().enabled, WAIT_MS);
  const l1Hits = (c: Cache<Cat>): number => c.counters().docs.l1_hits ?? 0;
  /**
   * Reads `key` on `c` until a read is served from L1, answering that value. (A read that went out before the
   * message about the write that preceded it arrived does not fill L1: which value it saw is unknown.)
   */
  const warm = async (c: Cache<Cat>, key: string): Promise<unknown> => {
    const cat = c.category('docs');
    let v: unknown;
    await eventually(async () => {
      const before = l1Hits(c);
      v = await cat.get(key);
      return l1Hits(c) === before + 1;
    }, WAIT_MS);
    return v;
  };
  /** Two replicas of one service, both subscribed. */
  const pair = async (): Promise<[Cache<Cat>, Cache<Cat>]> => {
    const service = uniqueName('l1');
    const a = replica(service);
    const b = replica(service);
    await enabled(a);
    await enabled(b);
    return [a, b];
  };

  beforeAll(async () => {
    server = await startRedisServer();
    raw = rawClient(server);
    raw.on('error', () => undefined);
  });
  afterEach(async () => {
    server.resume();
    await raw.acl('SETUSER', 'default', '+subscribe').catch(() => undefined);
    for (const c of open.splice(0)) await c.close();
  });
  afterAll(async () => {
    raw.disconnect();
    await server.stop();
  });

  it('serves a second read from L1 without any Redis GET, and counts it as a hit and an l1_hit', async () => {
    const [a, b] = await pair();
    await b.category('docs').set('k', { v: 1 });
    const ca = a.category('docs');
    expect(await warm(a, 'k')).toEqual({ v: 1 });
    const counted = a.counters().docs;
    const before = await commandCalls(raw);
    for (let i = 0; i < 5; i++) expect(await ca.get('k')).toEqual({ v: 1 });
    expect(await ca.mget(['k'])).toEqual([{ v: 1 }]);
    expect(await ca.has('k')).toBe(true);
    const after = await commandCalls(raw);
    for (const cmd of ['get', 'mget', 'getrange', 'evalsha', 'eval']) expect(after[cmd] ?? 0, cmd).toBe(before[cmd] ?? 0);
    expect(a.counters().docs).toEqual({ ...counted, hits: counted.hits + 6, l1_hits: (counted.l1_hits ?? 0) + 6 });
    expect(a.counters().docs.misses).toBe(0);

    await a.flushStats();
    const stats = await b.stats();
    expect(stats.service_stats.categories.docs).toMatchObject({ hits: counted.hits + 6, l1_hits: (counted.l1_hits ?? 0) + 6 });
    expect(stats.service_stats.categories.plain).not.toHaveProperty('l1_hits');
    expect(a.counters().plain).not.toHaveProperty('l1_hits');
  });

  it('an overwrite or delete on one replica is seen by the other (set, mset, delete, invalidate)', async () => {
    const [a, b] = await pair();
    const ca = a.category('docs');
    const cb = b.category('docs');

    await cb.set('k', 'v1');
    expect(await warm(a, 'k')).toBe('v1');
    await cb.set('k', 'v2');
    await eventually(async () => (await ca.get('k')) === 'v2', WAIT_MS);
    expect(await warm(a, 'k')).toBe('v2');

    await cb.mset<unknown>([{ key: 'k', value: 'v3' }, { key: 'other', value: 1 }]);
    await eventually(async () => (await ca.get('k')) === 'v3', WAIT_MS);

    expect(await warm(a, 'k')).toBe('v3');
    expect(await cb.delete('k')).toBe(true);
    await eventually(async () => (await ca.get('k')) === undefined, WAIT_MS);

    await cb.mset([{ key: 'x', value: 'x1' }, { key: 'y', value: 'y1' }]);
    expect(await warm(a, 'x')).toBe('x1');
    expect(await warm(a, 'y')).toBe('y1');
    expect(await cb.invalidate(['x', 'y'])).toBe(2);
    await eventually(async () => (await ca.mget(['x', 'y'])).every((v) => v === undefined), WAIT_MS);
  });

  it('getOrSet and wrapJson: a replica replaces its copy when another one deletes or reloads the entry', async () => {
    const [a, b] = await pair();
    const ca = a.category('docs');
    const cb = b.category('docs');
    const bytes = await ca.wrapJson('page', async () => ({ n: 1 }));
    expect(bytes.toString()).toBe('{"n":1}');
    const before = l1Hits(a);
    // An L1 hit hands back the very Buffer it stored: no decode, no copy.
    expect(await ca.wrapJson('page', async () => ({ n: -1 }))).toBe(bytes);
    expect(l1Hits(a)).toBe(before + 1);

    await cb.delete('page');
    await eventually(async () => (await ca.wrapJson('page', async () => ({ n: 2 }))).toString() === '{"n":2}', WAIT_MS);

    // What L1 answers is what Redis answers: a loaded Date is its JSON string on the next read, here and elsewhere.
    const when = new Date('2024-01-02T03:04:05.000Z');
    expect(await ca.getOrSet('d', async () => ({ when }))).toEqual({ when });
    expect(await ca.getOrSet('d', async () => null)).toEqual({ when: when.toISOString() });
    expect(await cb.get('d')).toEqual({ when: when.toISOString() });

    expect(await ca.getOrSet('g', async () => 'first')).toBe('first');
    await cb.set('g', 'second');
    await eventually(async () => (await ca.getOrSet('g', async () => 'loaded')) === 'second', WAIT_MS);
  });

  it('pattern, tag, category and service clears on one replica empty the other one\'s L1', async () => {
    const [a, b] = await pair();
    const ca = a.category('docs');
    const cb = b.category('docs');
    const seedAndWarm = async (keys: string[], tags: string[] = []) => {
      for (const k of keys) await cb.set(k, `val-${k}`, { tags });
      for (const k of keys) expect(await warm(a, k)).toBe(`val-${k}`);
    };
    const goneOnA = (keys: string[]) => eventually(async () => (await ca.mget(keys)).every((v) => v === undefined), WAIT_MS);

    await seedAndWarm(['user:1:a', 'user:1:b']);
    expect(await cb.invalidatePattern('user:1:*')).toBe(2);
    await goneOnA(['user:1:a', 'user:1:b']);

    await seedAndWarm(['t1', 't2'], ['doc:42']);
    expect(await b.invalidateTags(['doc:42'])).toBe(2);
    await goneOnA(['t1', 't2']);

    await seedAndWarm(['c1']);
    expect(await cb.clear()).toBe(1);
    await goneOnA(['c1']);

    await seedAndWarm(['s1']);
    expect(await b.clear()).toBe(1);
    await goneOnA(['s1']);
  });

  it('a replica\'s own writes and deletes change its L1 before the call resolves', async () => {
    const [a] = await pair();
    const ca = a.category('docs');
    const doc = { title: 'one' };
    expect(await ca.set('k', doc)).toBe(true);
    doc.title = 'changed after set';
    const before = l1Hits(a);
    expect(await ca.get('k')).toEqual({ title: 'one' }); // from L1, as Redis has it
    expect(l1Hits(a)).toBe(before + 1);
    await ca.set('k', 'two');
    expect(await ca.get('k')).toBe('two');
    await ca.delete('k');
    expect(await ca.get('k')).toBeUndefined();
    await ca.set('p:1', 1);
    await ca.invalidatePattern('p:*');
    expect(await ca.get('p:1')).toBeUndefined();
  });

  it('keeps within l1MaxBytes: 100 values of ~1 KB in a 10,000-byte L1', async () => {
    const service = uniqueName('l1mem');
    const c = new Cache({ service, categories: { small: { ttl: 600, l1MaxBytes: 10_000 } }, env: {}, connection: connectionOf(server) });
    open.push(c);
    const cat = c.category('small');
    await eventually(() => cat.l1Info().enabled, WAIT_MS);
    const value = (i: number) => `${i}:`.padEnd(1000, 'x');
    for (let i = 0; i < 100; i++) expect(await cat.set(`k${i}`, value(i))).toBe(true);
    let info = cat.l1Info();
    expect(info.bytes).toBeLessThanOrEqual(10_000);
    expect(info.maxBytes).toBe(10_000);
    expect(info.entries).toBeGreaterThan(0);
    expect(info.entries).toBeLessThan(100);

    // Reading them all back (Redis fills L1 again) stays within the bound too, and every value is right.
    for (let i = 0; i < 100; i++) expect(await cat.get(`k${i}`)).toBe(value(i));
    expect(await cat.mget(Array.from({ length: 100 }, (_, i) => `k${i}`))).toEqual(Array.from({ length: 100 }, (_, i) => value(i)));
    info = cat.l1Info();
    expect(info.bytes).toBeLessThanOrEqual(10_000);
    expect(info.entries).toBeLessThanOrEqual(10);

    // A value larger than the whole tier is never kept, and still read from Redis.
    const big = 'y'.repeat(20_000);
    expect(await cat.set('big', big)).toBe(true);
    expect(await cat.get('big')).toBe(big);
    expect(await cat.get('big')).toBe(big);
    expect(cat.l1Info().bytes).toBeLessThanOrEqual(10_000);
  });

  it('an entry past its logical expiry (grace) is not served from L1: getOrSet serves it stale and refreshes it', async () => {
    const service = uniqueName('l1grace');
    const c = new Cache({ service, categories: { g: { ttl: 600, grace: 60, l1MaxBytes: 100_000 } }, env: {}, connection: connectionOf(server), jitter: 0 });
    open.push(c);
    const cat = c.category('g');
    await eventually(() => cat.l1Info().enabled, WAIT_MS);
    let calls = 0;
    const loader = async () => `v${++calls}`;
    expect(await cat.getOrSet('k', loader, { ttl: 0.3 })).toBe('v1');
    expect(await cat.getOrSet('k', loader, { ttl: 0.3 })).toBe('v1');
    await sleep(400);
    expect(await cat.get('k')).toBeUndefined();
    expect(await cat.getOrSet('k', loader, { ttl: 600 })).toBe('v1');
    await eventually(async () => (await cat.get('k')) === 'v2', WAIT_MS);
  });

  it('a killed subscriber connection clears L1 at once; a change made meanwhile is never served stale; L1 works again once resubscribed', async () => {
    const [a, b] = await pair();
    const ca = a.category('docs');
    const cb = b.category('docs');
    await cb.set('k', 'before');
    expect(await warm(a, 'k')).toBe('before');

    // Subscribing is refused for now, so the replicas stay unsubscribed until we allow it again.
    await raw.acl('SETUSER', 'default', '-subscribe');
    expect(Number(await raw.call('CLIENT', 'KILL', 'TYPE', 'pubsub'))).toBeGreaterThanOrEqual(2);
    await eventually(() => !ca.l1Info().enabled && ca.l1Info().entries === 0, WAIT_MS);

    // B's message about this change reaches nobody.
    await cb.set('k', 'during');
    expect(await ca.get('k')).toBe('during');
    const hits = l1Hits(a);
    expect(await ca.get('k')).toBe('during');
    expect(l1Hits(a)).toBe(hits); // nothing stored or served while unsubscribed
    expect(ca.l1Info().entries).toBe(0);
    await sleep(1500); // a few heartbeats' retries, all refused
    expect(ca.l1Info().enabled).toBe(false);

    await raw.acl('SETUSER', 'default', '+subscribe');
    await enabled(a);
    await enabled(b);
    expect(await warm(a, 'k')).toBe('during');
    await cb.set('k', 'after');
    await eventually(async () => (await ca.get('k')) === 'after', WAIT_MS);
  });

  it('CLIENT KILL of only the subscriber: L1 is cleared and comes back by itself', async () => {
    const [a, b] = await pair();
    const ca = a.category('docs');
    await b.category('docs').set('k', 1);
    expect(await warm(a, 'k')).toBe(1);
    const list = String(await raw.client('LIST'));
    const subs = list.split('\n').filter((l) => /\bname=\S+:l1\b/.test(l) && /\bsub=1\b/.test(l));
    expect(subs.length).toBe(2);
    const id = /\bid=(\d+)/.exec(subs[0] as string)?.[1] as string;
    await raw.client('KILL', 'ID', id);
    // Which replica's connection it was does not matter: the one that lost it has no L1 until it resubscribes.
    await eventually(() => [a, b].some((c) => !c.category('docs').l1Info().enabled), WAIT_MS);
    await enabled(a);
    await enabled(b);
    expect(await warm(a, 'k')).toBe(1);
    await b.category('docs').set('k', 2);
    await eventually(async () => (await ca.get('k')) === 2, WAIT_MS);
  });

  it('a paused server (no PONG from the subscriber) clears L1 rather than serving what may have changed', async () => {
    const [a, b] = await pair();
    await b.category('docs').set('k', 'v');
    expect(await warm(a, 'k')).toBe('v');
    server.pause();
    try {
      await eventually(() => !a.category('docs').l1Info().enabled, WAIT_MS);
      expect(a.category('docs').l1Info().entries).toBe(0);
    } finally {
      server.resume();
    }
    await enabled(a);
    await b.category('docs').set('k', 'w');
    await eventually(async () => (await a.category('docs').get('k')) === 'w', WAIT_MS);
  });

  it('kill -9 and restart of Redis: L1 is cleared, reads are misses (not stale hits), and L1 works again after the restart', async () => {
    const [a, b] = await pair();
    const ca = a.category('docs');
    const cb = b.category('docs');
    await cb.set('k', 'old');
    expect(await warm(a, 'k')).toBe('old');
    await server.kill();
    try {
      await eventually(() => !ca.l1Info().enabled && ca.l1Info().entries === 0, WAIT_MS);
      expect(await ca.get('k')).toBeUndefined();
    } finally {
      await server.restart();
    }
    await enabled(a, 'docs');
    await enabled(b, 'docs');
    await eventually(async () => (await cb.set('k', 'new')) === true, WAIT_MS);
    await eventually(async () => (await ca.get('k')) === 'new', WAIT_MS);
    expect(await warm(a, 'k')).toBe('new');
    await cb.set('k', 'newer');
    await eventually(async () => (await ca.get('k')) === 'newer', WAIT_MS);
  });

  it('with a client handed in, the cache makes and closes its own subscriber and leaves the handed client open', async () => {
    const handed = rawClient(server);
    try {
      const service = uniqueName('l1handed');
      const a = new Cache<Cat>({ service, categories, env: {}, client: handed });
      const b = replica(service);
      await enabled(a);
      await enabled(b);
      await b.category('docs').set('k', 'v1');
      expect(await warm(a, 'k')).toBe('v1');
      await b.category('docs').set('k', 'v2');
      await eventually(async () => (await a.category('docs').get('k')) === 'v2', WAIT_MS);
      await a.close();
      expect(handed.status).toBe('ready');
      const names = String(await raw.client('LIST')).split('\n').filter((l) => l.includes(`name=${service}:l1`));
      expect(names.length).toBe(1); // b's only
    } finally {
      handed.disconnect();
    }
  });

  it('without l1MaxBytes nothing changes: no subscriber, no l1_hits, l1Info all zero', async () => {
    const service = uniqueName('nol1');
    const c = new Cache({ service, categories: { plain: { ttl: 600 } }, env: {}, connection: connectionOf(server) });
    open.push(c as Cache<string>);
    const cat: CategoryCache = c.category('plain');
    await cat.set('k', 1);
    const before = await commandCalls(raw);
    expect(await cat.get('k')).toBe(1);
    expect(await cat.get('k')).toBe(1);
    expect((await commandCalls(raw)).get).toBe((before.get ?? 0) + 2);
    expect(c.counters().plain).toEqual({ hits: 2, misses: 0, sets: 1, deletes: 0, errors: 0 });
    expect(cat.l1Info()).toEqual({ entries: 0, bytes: 0, maxBytes: 0, enabled: false });
    expect(String(await raw.client('LIST'))).not.toContain(`name=${service}:l1`);
  });

  it('the Fastify plugin: /stats reports l1_hits, and closing the app closes the subscriber', async () => {
    const service = uniqueName('l1fastify');
    const app = Fastify({ logger: false });
    await app.register(cachePlugin, { service, categories, env: {}, connection: connectionOf(server), statsFlushIntervalMs: 50 });
    await app.ready();
    try {
      const cat = app.cache.category('docs');
      await eventually(() => cat.l1Info().enabled, WAIT_MS);
      await cat.set('k', 'v');
      expect(await cat.get('k')).toBe('v');
      const res = await app.inject({ method: 'GET', url: '/api/v1/cache/stats' });
      expect(res.statusCode).toBe(200);
      expect(res.json().service_stats.categories.docs).toMatchObject({ hits: 1, l1_hits: 1 });
      expect(res.json().service_stats.categories.plain.l1_hits).toBeUndefined();
      expect(String(await raw.client('LIST'))).toContain(`name=${service}:l1`);
    } finally {
      await app.close();
    }
    expect(String(await raw.client('LIST'))).not.toContain(`name=${service}:l1`);
  });

  it('config: L1 is refused on sliding categories, l1TtlSeconds must be a positive whole number, default 60', () => {
    expect(() => resolveCategories({ mem: { ttl: 60, sliding: true, l1MaxBytes: 1000 } }, {})).toThrow(CacheConfigError);
    expect(() => resolveCategories({ c: { ttl: 60, l1MaxBytes: 1000, l1TtlSeconds: 0 } }, {})).toThrow(/l1TtlSeconds/);
    expect(() => resolveCategories({ c: { ttl: 60, l1MaxBytes: 1000, l1TtlSeconds: 1.5 } }, {})).toThrow(/l1TtlSeconds/);
    expect(resolveCategories({ c: { ttl: 60, l1MaxBytes: 1000 } }, {})[0]).toMatchObject({ l1MaxBytes: 1000, l1TtlSeconds: 60 });
    expect(resolveCategories({ c: { ttl: 60 } }, {})[0]).not.toHaveProperty('l1TtlSeconds');
  });

  it('config: CACHE_L1_MAX_BYTES_<CATEGORY> turns the L1 on or off per category, digits only, never on a sliding one', () => {
    expect(resolveCategories({ c: { ttl: 60 } }, { CACHE_L1_MAX_BYTES_C: '5000000' })[0]).toMatchObject({ l1MaxBytes: 5_000_000, l1TtlSeconds: 60 });
    expect(resolveCategories({ c: { ttl: 60, l1MaxBytes: 1000 } }, { CACHE_L1_MAX_BYTES_C: '0' })[0]).toMatchObject({ l1MaxBytes: 0 });
    expect(resolveCategories({ c: { ttl: 60, l1MaxBytes: 1000 } }, { CACHE_L1_MAX_BYTES_C: ' ' })[0]).toMatchObject({ l1MaxBytes: 1000 });
    for (const bad of ['1e6', '0x10', '-1', '1.5', 'lots']) {
      expect(() => resolveCategories({ c: { ttl: 60 } }, { CACHE_L1_MAX_BYTES_C: bad })).toThrow(/CACHE_L1_MAX_BYTES_C must be a whole number of bytes/);
    }
    expect(() => resolveCategories({ mem: { ttl: 60, sliding: true } }, { CACHE_L1_MAX_BYTES_MEM: '1000' })).toThrow(
      expect.objectContaining({ variable: 'CACHE_L1_MAX_BYTES_MEM', message: expect.stringContaining('sliding') }),
    );
  });
});
