import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisCluster, uniqueName, type RedisClusterHandle } from '@aicache/test-redis';
import { Redis } from 'ioredis';
import { Cache } from '../src/index.js';
import { slotOf } from '../src/cluster.js';
import { eventually, sleep } from './helpers.js';

// An invalidation by SCAN while a slot migrates between masters: nothing of the category left behind, nothing
// outside it removed.

const categories = { docs: { ttl: 600 }, other: { ttl: 600 } };

describe('invalidation while a slot migrates (Cluster)', () => {
  let cluster: RedisClusterHandle;
  let cache: Cache<'docs' | 'other'>;
  const conns: Redis[] = [];
  const connect = (host: string, port: number): Redis => {
    const c = new Redis({ host, port });
    c.on('error', () => undefined);
    conns.push(c);
    return c;
  };

  /** Marks `slot` as moving from its master to another one (IMPORTING/MIGRATING); no key has moved yet. */
  const startMigrating = async (slot: number) => {
    const masters = (await cluster.masters()).map((s) => ({ server: s, conn: connect(s.host, s.port) }));
    const owner = (cache.client as unknown as { slots: string[][] }).slots[slot]![0]!;
    const source = masters.find((m) => `${m.server.host}:${m.server.port}` === owner)!;
    const target = masters.find((m) => m !== source)!;
    const sourceId = String(await source.conn.cluster('MYID'));
    const targetId = String(await target.conn.cluster('MYID'));
    await target.conn.cluster('SETSLOT', slot, 'IMPORTING', sourceId);
    await source.conn.cluster('SETSLOT', slot, 'MIGRATING', targetId);
    const inSlot = (await source.conn.cluster('GETKEYSINSLOT', slot, 10_000)) as string[];
    return { masters, source, target, targetId, inSlot };
  };

  beforeAll(async () => {
    cluster = await startRedisCluster({ replicasPerMaster: 0 });
    cache = new Cache({ service: uniqueName('mig'), categories, env: {}, topology: { mode: 'cluster', nodes: cluster.nodes }, commandTimeoutMs: 2000 });
    await eventually(async () => cache.client.status === 'ready' && (await cache.category('docs').set('warm', 1)), 10_000);
  }, 60_000);
  afterAll(async () => {
    await cache?.close();
    for (const c of conns) c.disconnect();
    await cluster?.stop();
  }, 30_000);

  it('a category clear that runs while a slot moves removes every entry of the category and only those', async () => {
    const docs = cache.category('docs');
    const other = cache.category('other');
    const N = 5000;
    const keys = Array.from({ length: N }, (_, i) => `m${i}`);
    expect(await docs.mset(keys.map((key) => ({ key, value: 1 })))).toBe(true);
    expect(await other.mset(keys.map((key) => ({ key, value: 1 })))).toBe(true);

    // The slot of one bucket, holding entries of both categories, moves from its master to another one.
    const slot = slotOf(docs.key('m0'));
    const { masters, source, target, targetId, inSlot } = await startMigrating(slot);
    expect(inSlot.length).toBeGreaterThan(20);
    expect(inSlot.some((k) => k.includes(':other:'))).toBe(true);
    const half = inSlot.slice(0, Math.floor(inSlot.length / 2));
    await source.conn.migrate(target.server.host, target.server.port, '', 0, 5000, 'KEYS', ...half);

    // The clear starts with the slot half moved (its generation bump meets ASK there); the move completes while the
    // clear runs. Whether a first pass misses keys depends on when the move lands; the slot in motion makes it run
    // again either way.
    const clearing = docs.clear();
    await sleep(100);
    await source.conn.migrate(target.server.host, target.server.port, '', 0, 5000, 'KEYS', ...inSlot.slice(half.length));
    for (const m of masters) await m.conn.cluster('SETSLOT', slot, 'NODE', targetId);
    const removed = await clearing;

    const left = async (cat: string): Promise<number> => {
      let n = 0;
      for (const m of masters) {
        let cursor = '0';
        do {
          const [next, page] = await m.conn.scan(cursor, 'MATCH', `${cache.service}:${cat}:*`, 'COUNT', 1000);
          cursor = next;
          n += page.length;
        } while (cursor !== '0');
      }
      return n;
    };
    expect(await left('docs')).toBe(0);
    expect(await left('other')).toBe(N);
    expect(removed).toBe(N + 1);
    expect(await other.get('m0')).toBe(1);
  }, 60_000);

  it('mget and invalidate() of keys whose slot is half moved read and remove them all (the pipeline meets ASK/TRYAGAIN, the retry follows it)', async () => {
    const docs = cache.category('docs');
    const keys = Array.from({ length: 2000 }, (_, i) => `h${i}`);
    expect(await docs.mset(keys.map((key) => ({ key, value: 1 })))).toBe(true);
    const slot = slotOf(docs.key('h0'));
    const inBucket = keys.filter((k) => slotOf(docs.key(k)) === slot);
    expect(inBucket.length).toBeGreaterThan(2);
    const { masters, source, target, targetId, inSlot } = await startMigrating(slot);
    const moved = inSlot.filter((k) => k.includes(':docs:')).slice(0, Math.ceil(inBucket.length / 2));
    await source.conn.migrate(target.server.host, target.server.port, '', 0, 5000, 'KEYS', ...moved);
    try {
      // Reads of the half-moved slot still answer every key (an MGET there answers TRYAGAIN; GETs follow ASK).
      expect(await docs.mget(keys)).toEqual(keys.map(() => 1));
      expect(await docs.invalidate([...inBucket, 'h-other-bucket'])).toBe(inBucket.length);
    } finally {
      const rest = (await source.conn.cluster('GETKEYSINSLOT', slot, 10_000)) as string[];
      if (rest.length > 0) await source.conn.migrate(target.server.host, target.server.port, '', 0, 5000, 'KEYS', ...rest);
      for (const m of masters) await m.conn.cluster('SETSLOT', slot, 'NODE', targetId);
    }
    for (const k of inBucket) expect(await docs.get(k)).toBeUndefined();
    expect(await docs.get(keys.find((k) => slotOf(docs.key(k)) !== slot)!)).toBe(1);
  }, 60_000);
});
