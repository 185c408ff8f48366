import type { Socket } from 'node:net';
import { Cache, isCluster } from '@aicache/cache';
import { startRedisCluster } from '@aicache/test-redis';
import { ourCache, ready } from '../ours.js';
import { makeEmbedding, makeSearchAnswer, type SearchAnswer } from '../payload.js';
import { fmtMs, fmtNum, ROW_TITLES, spread, type Row } from '../results.js';
import { median, nowMs, rotation, runBounded } from '../stats.js';
import type { SectionContext } from './context.js';

const DB = 5;
type Where = 'single' | 'cluster';

/** Socket writes of every connection of the cache's client (each node's on a Cluster): a pipeline is one write. */
function countWrites(cache: Cache<string>): { count: () => number; restore: () => void } {
  const client = cache.client;
  const streams = (isCluster(client) ? client.nodes('all') : [client]).map((c) => (c as unknown as { stream: Socket }).stream);
  let writes = 0;
  const originals = streams.map((s) => s.write);
  streams.forEach((s, i) => {
    const orig = originals[i]!;
    s.write = function (this: Socket, ...a: Parameters<Socket['write']>): boolean {
      writes++;
      return orig.apply(this, a);
    } as Socket['write'];
  });
  return { count: () => writes, restore: () => streams.forEach((s, i) => (s.write = originals[i]!)) };
}

/**
 * Row 7: the cache on a private 3-master Cluster (no replicas) beside the same cache on one server, in one run:
 * getOrSet hit throughput (alternating rounds, as row 2), and an embeddings batch of 256 inputs, 90% cached
 * (mget + mset of the misses): its latency and its round trips.
 */
export async function clusterSection(ctx: SectionContext): Promise<{ rows: Row[]; details: unknown }> {
  const p = ctx.params.library;
  const b = ctx.params.batch;
  const cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 0 });
  const categories = { answers: { ttl: 3600 }, embeddings: { ttl: 86400 } };
  const caches: Record<Where, Cache<'answers' | 'embeddings'>> = {
    single: ourCache(ctx.redisUrl, 'bench-cl', categories, DB, { statsFlushIntervalMs: 3_600_000 }),
    cluster: new Cache({ service: 'bench-cl', categories, env: {}, topology: { mode: 'cluster', nodes: cluster.nodes }, statsFlushIntervalMs: 3_600_000 }),
  };
  const where: Where[] = ['single', 'cluster'];
  try {
    for (const w of where) await ready(caches[w]);
    const answer = makeSearchAnswer();
    const keys = Array.from({ length: p.keys }, (_, i) => `answer-${i}`);
    let loaderCalls = 0;
    const loader = async (): Promise<SearchAnswer> => {
      loaderCalls++;
      return answer;
    };
    for (const w of where) {
      await runBounded(keys.length, 20, async (i) => {
        if (!(await caches[w].category('answers').set(keys[i]!, answer))) throw new Error(`seeding ${w} failed`);
      });
      await runBounded(Math.min(p.ops, 2000), p.concurrency, (i) => caches[w].category('answers').getOrSet(keys[i % keys.length]!, loader));
    }
    loaderCalls = 0;
    const ops: Record<Where, number[]> = { single: [], cluster: [] };
    for (let round = 0; round < p.rounds; round++) {
      for (const w of rotation(where, round)) {
        const ms = await runBounded(p.ops, p.concurrency, (i) => caches[w].category('answers').getOrSet(keys[i % keys.length]!, loader));
        ops[w].push(p.ops / (ms / 1000));
      }
      ctx.log(`  round ${round + 1}/${p.rounds}: single ${fmtNum(ops.single.at(-1)!)}, cluster ${fmtNum(ops.cluster.at(-1)!)} ops/s`);
    }
    if (loaderCalls > 0) throw new Error(`${loaderCalls} loader calls during timed rounds: not every call was a hit`);
    const hitRatios = ops.cluster.map((c, i) => c / ops.single[i]!);

    // The batch: as row 4, on each deployment.
    const cached = Math.round(b.inputs * b.cachedFraction);
    const hot = Array.from({ length: cached }, (_, i) => `hot-${i}`);
    let batchNo = 0;
    const batch = async (w: Where): Promise<number> => {
      const cat = caches[w].category('embeddings');
      const n = batchNo++;
      const ks = [...hot, ...Array.from({ length: b.inputs - cached }, (_, i) => `new-${n}-${i}`)];
      const t0 = nowMs();
      const got = await cat.mget<Float32Array>(ks);
      const missing = ks.flatMap((k, i) => (got[i] === undefined ? [{ key: k, value: makeEmbedding(b.dims, i + 1) }] : []));
      if (missing.length !== b.inputs - cached) throw new Error(`${w}: ${missing.length} misses, expected ${b.inputs - cached}`);
      if (!(await cat.mset(missing))) throw new Error(`${w}: mset failed`);
      return nowMs() - t0;
    };
    for (const w of where) if (!(await caches[w].category('embeddings').mset(hot.map((k, i) => ({ key: k, value: makeEmbedding(b.dims, i + 1) }))))) throw new Error(`seeding ${w} batch failed`);
    for (const w of where) await batch(w);
    const batchMs: Record<Where, number[]> = { single: [], cluster: [] };
    for (let round = 0; round < b.rounds; round++) for (const w of rotation(where, round)) batchMs[w].push(await batch(w));
    const trips: Record<Where, number> = { single: 0, cluster: 0 };
    for (const w of where) {
      const counter = countWrites(caches[w]);
      await batch(w);
      counter.restore();
      trips[w] = counter.count();
    }
    const nodes = (await cluster.masters()).length;
    const rows: Row[] = [
      {
        id: '7a',
        figure: ROW_TITLES['7a'],
        ours: `Cluster: ${fmtNum(median(ops.cluster))} ops/s`,
        baseline: `one server: ${fmtNum(median(ops.single))} ops/s`,
        ratio: median(hitRatios),
        target: '(info)',
        status: 'info',
        note: `${nodes} masters, no replicas, all local; ~2 KB answers, ${p.keys} keys, concurrency ${p.concurrency}; median of ${p.rounds} alternating rounds (${spread(hitRatios)})`,
      },
      {
        id: '7b',
        figure: ROW_TITLES['7b'],
        ours: `Cluster: ${trips.cluster} round trips, ${fmtMs(median(batchMs.cluster))}`,
        baseline: `one server: ${trips.single} round trips, ${fmtMs(median(batchMs.single))}`,
        ratio: median(batchMs.cluster) / median(batchMs.single),
        ratioText: `${(median(batchMs.cluster) / median(batchMs.single)).toFixed(2)}x latency`,
        target: `2 per node involved (${2 * nodes})`,
        status: trips.cluster <= 2 * nodes && trips.single === 2 ? 'met' : 'missed',
        note: `${b.inputs} x ${b.dims}-dim, ${cached} cached: mget + mset of the misses; round trips = socket writes over every connection of the cache's client (a pipeline is one write per node); median of ${b.rounds} batches`,
      },
    ];
    return { rows, details: { opsPerSec: ops, batchMs, roundTrips: trips } };
  } finally {
    for (const w of where) await caches[w].close();
    await cluster.stop();
  }
}
