import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisCluster, startRedisSentinel, uniqueName, type RedisClusterHandle, type RedisSentinelSet } from '@aicache/test-redis';
import { Cache, type CategoryCache, type RedisTopology } from '../src/index.js';
import { slotOf } from '../src/cluster.js';
import { eventually, sleep } from './helpers.js';

// The fail-open promises during a failover, measured: kill -9 of a Cluster master, or of the Sentinel set's
// primary, under read and write load through the Cache; then the whole cluster down. Figures are printed; asserts are on what a user would notice.

const categories = { docs: { ttl: 600 } };
const TIMEOUT_MS = 250;

interface Figures {
  calls: number;
  threw: number;
  misses: number;
  longestMs: number;
  resumeSeconds: number;
  /** The probe key's last acknowledged value, and what is stored once the dust settled. */
  lastAcked: number;
  final: number | undefined;
}

/**
 * Read load (4 loops) and a write loop through the cache; `kill` runs 500 ms in. Ends 1 s after a write to
 * `probeKey` (a key the killed node served) was acknowledged again.
 */
async function underKill(docs: CategoryCache, keys: string[], probeKey: string, kill: () => Promise<void>): Promise<Figures> {
  let stop = false;
  let threw = 0;
  let calls = 0;
  let misses = 0;
  let longest = 0;
  let seq = 0;
  let lastAcked = 0;
  let killedAt = 0;
  let resumedAt = 0;
  const timed = async <T>(f: () => Promise<T>): Promise<T | undefined> => {
    const t0 = performance.now();
    try {
      return await f();
    } catch {
      threw++;
      return undefined;
    } finally {
      calls++;
      longest = Math.max(longest, performance.now() - t0);
    }
  };
  const reader = async (): Promise<void> => {
    while (!stop) {
      const v = await timed(() => docs.get(keys[Math.floor(Math.random() * keys.length)]!));
      if (v === undefined) misses++;
      // A miss answered at once (no connection, no offline queue) settles in a microtask: let timers run.
      await new Promise((r) => setImmediate(r));
    }
  };
  const writer = async (): Promise<void> => {
    while (!stop) {
      const n = ++seq;
      const ok = await timed(() => docs.set(probeKey, n));
      if (ok) {
        lastAcked = Math.max(lastAcked, n);
        if (killedAt && !resumedAt) resumedAt = performance.now();
      }
      await timed(() => docs.set(keys[Math.floor(Math.random() * keys.length)]!, n));
      await sleep(20);
    }
  };
  const load = [...Array.from({ length: 4 }, reader), writer()];
  await sleep(500);
  killedAt = performance.now();
  await kill();
  await eventually(() => resumedAt > 0, 60_000);
  await sleep(1000);
  stop = true;
  await Promise.all(load);
  await sleep(1000);
  const final = await docs.get<number>(probeKey);
  return { calls, threw, misses, longestMs: Math.round(longest), resumeSeconds: (resumedAt - killedAt) / 1000, lastAcked, final };
}

/** Uncaught exceptions and unhandled rejections while a describe runs: none may occur. */
function catchUncaught(): { uncaught: unknown[]; on: () => void; off: () => void } {
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown): void => {
    uncaught.push(err);
  };
  return {
    uncaught,
    on: () => {
      process.on('uncaughtException', onUncaught);
      process.on('unhandledRejection', onUncaught);
    },
    off: () => {
      process.off('uncaughtException', onUncaught);
      process.off('unhandledRejection', onUncaught);
    },
  };
}

/** A cache for these tests (commands bounded at TIMEOUT_MS, a breaker that never opens), once it writes. */
async function readyCache(service: string, topology: RedisTopology): Promise<Cache<'docs'>> {
  const cache = new Cache({ service: uniqueName(service), categories, env: {}, topology, commandTimeoutMs: TIMEOUT_MS, breaker: { failureThreshold: 1_000_000 } });
  await eventually(async () => cache.client.status === 'ready' && (await cache.category('docs').set('warm', 1)), 10_000);
  return cache;
}

/** 300 keys written through the cache, for the load to read and write. */
async function loadedKeys(docs: CategoryCache): Promise<string[]> {
  const keys = Array.from({ length: 300 }, (_, i) => `k${i}`);
  expect(await docs.mset(keys.map((key) => ({ key, value: 0 })))).toBe(true);
  return keys;
}

/** Prints the figures of a kill under load, and asserts what a user would notice. */
function expectFailOpen(label: string, what: string, f: Figures, uncaught: unknown[]): void {
  console.log(
    `[${label}] ${what}: ${f.calls} calls, ${f.threw} threw, ${f.misses} read misses, longest call ${f.longestMs} ms, ` +
      `writes landed again after ${f.resumeSeconds.toFixed(2)} s, uncaught ${uncaught.length}`,
  );
  expect(f.threw).toBe(0);
  expect(uncaught).toEqual([]);
  // Every call ended within its bound (the command timeout, plus the event loop's slack on a loaded machine).
  expect(f.longestMs).toBeLessThan(TIMEOUT_MS * 8);
  // The last acknowledged write is what is there: no write that timed out landed after it.
  expect(f.final).toBe(f.lastAcked);
}

describe('the cache through a Cluster failover', () => {
  let cluster: RedisClusterHandle;
  let cache: Cache<'docs'>;
  const { uncaught, on: catchOn, off: catchOff } = catchUncaught();

  beforeAll(async () => {
    catchOn();
    // 2 s keeps the file short; FAILOVER_NODE_TIMEOUT_MS=5000 measures with the harness's default.
    cluster = await startRedisCluster({ nodeTimeoutMs: Number(process.env.FAILOVER_NODE_TIMEOUT_MS ?? 2000) });
    cache = await readyCache('fo', { mode: 'cluster', nodes: cluster.nodes });
  }, 60_000);
  afterAll(async () => {
    catchOff();
    await cache?.close();
    await cluster?.stop();
  }, 30_000);

  it('kill -9 of a master under load: no call throws or hangs, writes land again, no late write', async () => {
    const docs = cache.category('docs');
    const keys = await loadedKeys(docs);
    const victim = (await cluster.masters())[0]!;
    // A key served by the master about to die: where "writes land again" is measured.
    const owner = `${victim.host}:${victim.port}`;
    const probeKey = keys.find((k) => (cache.client as unknown as { slots: string[][] }).slots[slotOf(docs.key(k))]?.[0] === owner)!;
    expect(probeKey).toBeDefined();
    const f = await underKill(docs, keys, probeKey, () => victim.kill());
    expectFailOpen('cluster failover', 'kill -9 of a master', f, uncaught);
  }, 90_000);

  it('the whole cluster down: every call ends as a miss within the timeout, and the process stays up', async () => {
    const docs = cache.category('docs');
    await Promise.all(cluster.servers.map((s) => s.kill()));
    let longest = 0;
    let threw = 0;
    const outcomes: unknown[] = [];
    const until = Date.now() + 4000;
    while (Date.now() < until) {
      const t0 = performance.now();
      try {
        outcomes.push(
          await Promise.all([
            docs.get('k1'),
            docs.mget(['k1', 'k2', 'k3']),
            docs.set('k1', 1),
            docs.getOrSet('k9', () => Promise.resolve('origin')),
            docs.invalidatePattern('k*'),
            cache.stats().then((s) => s.connected),
          ]),
        );
      } catch {
        threw++;
      }
      longest = Math.max(longest, performance.now() - t0);
      await sleep(100);
    }
    console.log(`[cluster down] ${outcomes.length} rounds of 6 calls, ${threw} threw, longest round ${Math.round(longest)} ms, uncaught ${uncaught.length}`);
    expect(threw).toBe(0);
    expect(uncaught).toEqual([]);
    expect(outcomes.length).toBeGreaterThan(3);
    for (const o of outcomes) expect(o).toEqual([undefined, [undefined, undefined, undefined], false, 'origin', 0, false]);
    expect(longest).toBeLessThan(5000);
  }, 30_000);
});

describe('the cache through a Sentinel failover', () => {
  let set: RedisSentinelSet;
  let cache: Cache<'docs'>;
  const { uncaught, on: catchOn, off: catchOff } = catchUncaught();

  beforeAll(async () => {
    catchOn();
    set = await startRedisSentinel({ downAfterMs: 1000 });
    cache = await readyCache('fos', { mode: 'sentinel', sentinels: set.sentinelNodes, name: set.name });
  }, 60_000);
  afterAll(async () => {
    catchOff();
    await cache?.close();
    await set?.stop();
  }, 30_000);

  it('kill -9 of the primary under load: no call throws or hangs, writes land again on the new primary, no late write', async () => {
    const docs = cache.category('docs');
    const keys = await loadedKeys(docs);
    await set.waitSynced();
    const victim = await set.primary();
    const f = await underKill(docs, keys, 'probe', () => victim.kill());
    expectFailOpen('sentinel failover', 'kill -9 of the primary', f, uncaught);
    expect(await set.primary()).not.toBe(victim);
  }, 90_000);
});
