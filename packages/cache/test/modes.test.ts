import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName } from '@aicache/test-redis';
import { Cache, decode, isCluster, type CacheOptions } from '../src/index.js';
import { CLUSTER_BUCKETS } from '../src/layout.js';
import { commandCalls, eventually, sleep } from './helpers.js';
import { startMode, type Mode } from './modes.js';

// The library's promises, kept the same on one server and on a 3-master Cluster: one suite, run against each.

const categories = { docs: { ttl: 600 }, other: { ttl: 600 }, hot: { ttl: 600, l1MaxBytes: 1_000_000 }, soft: { ttl: 1, grace: 30 } };
type Cat = keyof typeof categories;

describe.each(['single', 'sentinel', 'cluster'] as const)('the cache on %s', (modeName) => {
  let mode: Mode;
  const open: Array<Cache<string>> = [];
  const make = (service: string, extra: Partial<CacheOptions<Cat>> = {}): Cache<Cat> => {
    const c = new Cache<Cat>({ service, categories, env: {}, statsFlushIntervalMs: 600_000, commandTimeoutMs: 1000, ...mode.cacheOptions(), ...extra });
    open.push(c);
    return c;
  };
  const ready = async (c: Cache<string>): Promise<void> => {
    await eventually(async () => (await c.health()).status !== 'down' && c.client.status === 'ready', 10_000);
    // Write deadlines are checked once the server clock is known (a TIME after connecting).
    const runner = (c as unknown as { runner: { clockKnown: boolean; calibrate(): Promise<void> } }).runner;
    await eventually(async () => {
      await runner.calibrate();
      return runner.clockKnown;
    }, 10_000);
  };
  const resetStats = async (): Promise<void> => {
    for (const m of await mode.masters()) await m.config('RESETSTAT');
  };
  const calls = async (): Promise<Record<string, number>> => {
    const out: Record<string, number> = {};
    for (const m of await mode.masters()) for (const [k, v] of Object.entries(await commandCalls(m))) out[k] = (out[k] ?? 0) + v;
    return out;
  };

  beforeAll(async () => {
    mode = await startMode(modeName);
  }, 60_000);
  afterAll(async () => {
    for (const c of open) await c.close();
    await mode.stop();
  }, 30_000);

  it('lays keys out so that a user key with braces never picks its own slot, and scripts never meet CROSSSLOT', async () => {
    const cache = make(uniqueName('lay'));
    await ready(cache);
    const docs = cache.category('docs');
    const weird = ['a{b}c', '{x}', '}{', 'plain', 'ünï{c}ode', '*?[x]'];
    for (const k of weird) expect(await docs.set(k, k, { tags: ['t{1}'] })).toBe(true);
    for (const k of weird) expect(await docs.get(k)).toBe(k);
    expect(await docs.getOrSet('lease{me}', () => Promise.resolve('v'))).toBe('v');
    const keys = await mode.scan(`${cache.service}:docs:*`);
    expect(keys).toHaveLength(weird.length + 1);
    if (modeName !== 'cluster') {
      expect(keys).toContain(`${cache.service}:docs:a{b}c`);
    } else {
      // Every entry key's hash tag is its bucket's, whatever braces the user key holds.
      for (const k of keys) expect(k).toMatch(new RegExp(`^${cache.service}:docs:\\{${cache.service}\\.[0-9a-f]{2}\\}`));
      expect(isCluster(cache.client)).toBe(true);
    }
  });

  it('mget and mset of 256 keys cost one round trip per node involved, not one per key', async () => {
    const cache = make(uniqueName('batch'));
    await ready(cache);
    const docs = cache.category('docs');
    const keys = Array.from({ length: 256 }, (_, i) => `input-${i}`);
    const masters = (await mode.masters()).length;
    // A client-side count of the batches sent: every pipeline the cache opens (the calls go through unchanged).
    let pipelines = 0;
    const client = cache.client as unknown as { pipeline: (...args: unknown[]) => unknown };
    const pipeline = client.pipeline.bind(client);
    client.pipeline = (...args: unknown[]) => {
      pipelines++;
      return pipeline(...args);
    };
    // A server that has not run the write script yet (new, restarted, promoted) answers NOSCRIPT to the batch's
    // first pipeline and is sent a second one with the script's text: one more round trip, once per server.
    for (const m of await mode.masters()) await m.script('FLUSH');
    expect(await docs.mset(keys.map((k) => ({ key: k, value: { k } })))).toBe(true);
    const firstPipelines = pipelines;
    pipelines = 0;
    await resetStats();
    expect(await docs.mset(keys.map((k) => ({ key: k, value: { k } })))).toBe(true);
    const writes = await calls();
    const writePipelines = pipelines;
    pipelines = 0;
    await resetStats();
    const got = await docs.mget<{ k: string }>(keys);
    const reads = await calls();
    client.pipeline = pipeline;
    expect(got.map((v) => v?.k)).toEqual(keys);
    if (modeName !== 'cluster') {
      expect(writes.evalsha).toBe(1);
      expect(reads.mget).toBe(1);
      expect(pipelines).toBe(0);
      expect(firstPipelines).toBe(0);
    } else {
      expect(masters).toBe(3);
      // One pipeline per master; within it one WRITE per bucket and one MGET per slot.
      expect(firstPipelines).toBe(6);
      expect(writePipelines).toBe(3);
      expect(pipelines).toBe(3);
      expect(writes.evalsha).toBeLessThanOrEqual(CLUSTER_BUCKETS);
      expect(writes.evalsha).toBeGreaterThan(100);
      expect(reads.mget).toBe(writes.evalsha);
      console.log(`[cluster] 256-key batch: mset ${writes.evalsha} WRITE calls and mget ${reads.mget} MGETs in ${pipelines} round trips (one per master)`);
    }
  });

  it('a pattern invalidation on 100,000 keys removes exactly what it matched on one server, and nothing outside the category', async () => {
    const cache = make(uniqueName('inv'), { commandTimeoutMs: 5000 });
    const neighbour = make(`${cache.service}-n`);
    await ready(cache);
    await ready(neighbour);
    const docs = cache.category('docs');
    const N = 100_000;
    for (let i = 0; i < N; i += 5000) {
      expect(await docs.mset(Array.from({ length: Math.min(5000, N - i) }, (_, j) => ({ key: `doc:${i + j}`, value: 1 })))).toBe(true);
    }
    const odd = ['doc:{1}', 'doc:1}', 'doc:[1]', 'doc:*', 'doc\\:1', 'docs:1', 'x{doc:1}'];
    expect(await docs.mset(odd.map((key) => ({ key, value: 1 })))).toBe(true);
    expect(await cache.category('other').mset([{ key: 'doc:1', value: 1 }])).toBe(true);
    expect(await neighbour.category('docs').mset([{ key: 'doc:1', value: 1 }])).toBe(true);

    // doc:1, doc:1x... (1 + 10 + 100 + 1000 + 10000 of the numbered ones) and doc:1} from the odd ones.
    const removed = await docs.invalidatePattern('doc:1*');
    expect(removed).toBe(11_111 + 1);
    expect(await docs.get('doc:1')).toBeUndefined();
    expect(await docs.get('doc:2')).toBe(1);
    for (const k of odd.filter((k) => k !== 'doc:1}')) expect(await docs.get(k)).toBe(1);
    expect(await cache.category('other').get('doc:1')).toBe(1);
    expect(await neighbour.category('docs').get('doc:1')).toBe(1);
    // Braces and brackets in a glob mean what they meant on one server.
    expect(await docs.invalidatePattern('doc:{*')).toBe(1);
    expect(await docs.invalidatePattern('doc:\\[1]')).toBe(1);
    expect(await docs.get('doc:{1}')).toBeUndefined();

    const left = (await mode.scan(`${cache.service}:docs:*`)).length;
    expect(left).toBe(N - 11_111 + odd.length - 3);
    expect(await docs.clear()).toBe(left);
    expect(await mode.scan(`${cache.service}:docs:*`)).toEqual([]);
    expect(await cache.category('other').get('doc:1')).toBe(1);
  }, 120_000);

  it('tags and a service clear reach every bucket, keep the stats and generations, and leave other services alone', async () => {
    const cache = make(uniqueName('tag'));
    const neighbour = make(`${cache.service}-n`);
    await ready(cache);
    await ready(neighbour);
    const docs = cache.category('docs');
    const keys = Array.from({ length: 500 }, (_, i) => `k${i}`);
    expect(await docs.mset(keys.map((key, i) => ({ key, value: i, tags: i % 2 ? ['odd'] : ['even'] })))).toBe(true);
    expect(await neighbour.category('docs').set('k1', 1, { tags: ['odd'] })).toBe(true);
    expect(await cache.invalidateTags(['odd'])).toBe(250);
    const got = await docs.mget(keys);
    expect(got.filter((v) => v !== undefined)).toHaveLength(250);
    expect(got.every((v, i) => (i % 2 ? v === undefined : v === i))).toBe(true);
    expect(await neighbour.category('docs').get('k1')).toBe(1);

    await docs.get('k0');
    await cache.flushStats();
    const removed = await cache.clear();
    expect(removed).toBeGreaterThanOrEqual(250);
    const left = await mode.scan(`${cache.service}:*`);
    expect(left.every((k) => k === `${cache.service}:__stats` || k.startsWith(`${cache.service}:__flushed:`) || k.startsWith(`${cache.service}:__gen:`))).toBe(true);
    expect(left).toContain(`${cache.service}:__stats`);
    // 250 hits of the mget above, and one get.
    expect((await cache.stats()).service_stats.categories.docs?.hits).toBe(251);
    expect(await neighbour.category('docs').get('k1')).toBe(1);
  });

  it('a loader that ran across an invalidation does not write back what it read (generation per bucket)', async () => {
    const cache = make(uniqueName('gen'));
    await ready(cache);
    const docs = cache.category('docs');
    for (const invalidation of [() => docs.invalidate(['g']), () => docs.invalidatePattern('g*'), () => docs.clear(), () => cache.clear()]) {
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const pending = docs.getOrSet('g', async () => {
        await gate;
        return 'old';
      });
      await sleep(50);
      await invalidation();
      release();
      expect(await pending).toBe('old');
      expect(await docs.get('g')).toBeUndefined();
    }
  });

  it('stampede: 2 replicas x 25 concurrent callers run the loader once', async () => {
    const service = uniqueName('stamp');
    const a = make(service);
    const b = make(service);
    await ready(a);
    await ready(b);
    for (const key of ['one', 'two{x}', 'three']) {
      let loads = 0;
      const loader = async (): Promise<string> => {
        loads++;
        await sleep(200);
        return `v-${key}`;
      };
      const all = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).category('docs').getOrSet(key, loader)));
      expect(all.every((v) => v === `v-${key}`)).toBe(true);
      expect(loads).toBe(1);
    }
  });

  it('L1 coherence: a write or invalidation on one replica reaches the other replica\'s L1', async () => {
    const service = uniqueName('l1');
    const a = make(service);
    const b = make(service);
    await ready(a);
    await ready(b);
    await eventually(() => a.category('hot').l1Info().enabled && b.category('hot').l1Info().enabled, 10_000);
    const keys = ['p', 'q{1}', 'r'];
    for (const k of keys) expect(await a.category('hot').set(k, 'v1')).toBe(true);
    for (const k of keys) {
      // Served from L1 on b once warm.
      await eventually(async () => {
        const before = b.counters().hot.l1_hits ?? 0;
        await b.category('hot').get(k);
        return (b.counters().hot.l1_hits ?? 0) > before;
      }, 5000);
    }
    expect(await a.category('hot').mset(keys.map((key) => ({ key, value: 'v2' })))).toBe(true);
    await eventually(async () => (await Promise.all(keys.map((k) => b.category('hot').get(k)))).every((v) => v === 'v2'), 5000);
    await a.category('hot').invalidate(['p']);
    await eventually(async () => (await b.category('hot').get('p')) === undefined, 5000);
    await a.category('hot').invalidatePattern('q*');
    await eventually(async () => (await b.category('hot').get('q{1}')) === undefined, 5000);
    expect(await b.category('hot').get('r')).toBe('v2');
  });

  it('grace: a stale entry is served while one caller refreshes it', async () => {
    const cache = make(uniqueName('grace'));
    await ready(cache);
    const soft = cache.category('soft');
    expect(await soft.getOrSet('s{1}', () => Promise.resolve('first'))).toBe('first');
    await sleep(1200);
    let loads = 0;
    const again = await soft.getOrSet('s{1}', async () => {
      loads++;
      await sleep(100);
      return 'second';
    });
    expect(again).toBe('first');
    await eventually(async () => (await soft.get('s{1}')) === 'second', 5000);
    expect(loads).toBe(1);
  });

  it('a write that timed out never lands later (server-clock write deadline)', async () => {
    const cache = make(uniqueName('late'), { commandTimeoutMs: 200 });
    await ready(cache);
    const docs = cache.category('docs');
    expect(await docs.set('late{1}', 'v1')).toBe(true);
    const server = await mode.serverOf(docs.key('late{1}'));
    server.pause();
    try {
      expect(await docs.set('late{1}', 'v2')).toBe(false);
      await sleep(400);
    } finally {
      server.resume();
    }
    await eventually(async () => (await cache.health()).status !== 'down', 10_000);
    await sleep(200);
    const raw = mode.raw();
    const stored = await raw.getBuffer(docs.key('late{1}'));
    expect(stored && decode(stored).value).toBe('v1');
  });

  it('stats count hits and misses service-wide, and count keys on every master', async () => {
    const cache = make(uniqueName('stats'));
    await ready(cache);
    const docs = cache.category('docs');
    expect(await docs.mset(Array.from({ length: 300 }, (_, i) => ({ key: `s${i}`, value: i })))).toBe(true);
    await docs.mget(['s1', 's2', 'nope']);
    const s = await cache.stats();
    expect(s.connected).toBe(true);
    expect(s.service_stats.categories.docs).toMatchObject({ hits: 2, misses: 1, sets: 300, keys: 300 });
    if (modeName === 'cluster') {
      expect(s.nodes).toHaveLength(3);
      expect(s.nodes?.reduce((a, n) => a + (n.keys ?? 0), 0)).toBeGreaterThanOrEqual(300);
      expect(s.nodes?.every((n) => (n.keys ?? 0) > 0)).toBe(true);
      expect(s.scope.server).toMatch(/summed over the 3 masters/);
    } else {
      expect(s.nodes).toBeUndefined();
    }
  });
});
