import type { Socket } from 'node:net';
import { ourCache, ready } from '../ours.js';
import { makeEmbedding } from '../payload.js';
import { client, commandCalls, commandDelta, describeCalls, sumCalls } from '../redis.js';
import { fmtMs, ROW_TITLES, type Row } from '../results.js';
import { median, nowMs } from '../stats.js';
import type { SectionContext } from './context.js';

const DB = 4;

function seedOf(key: string): number {
  let h = 2166136261;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 16777619);
  return h >>> 0;
}

/**
 * Row 4: an embeddings request of 256 inputs, as the worker serves it: one mget, compute the misses
 * (here a deterministic vector fill, standing in for the model), one mset of what was computed.
 */
export async function batchSection(ctx: SectionContext): Promise<{ rows: Row[]; details: unknown }> {
  const p = ctx.params.batch;
  const cached = Math.round(p.inputs * p.cachedFraction);
  const cache = ourCache(ctx.redisUrl, 'bench-batch', { embeddings: { ttl: 86400 } }, DB, { statsFlushIntervalMs: 3_600_000 });
  const cat = cache.category('embeddings');
  const admin = client(ctx.redisUrl, DB);
  try {
    await ready(cache);
    const hotKeys = Array.from({ length: cached }, (_, i) => `hot-${i}`);
    if (!(await cat.mset(hotKeys.map((key) => ({ key, value: makeEmbedding(p.dims, seedOf(key)) }))))) throw new Error('seeding mset failed');

    let batchNo = 0;
    let failedWrites = 0;
    const batch = async (mode: 'mixed' | 'cold'): Promise<{ ms: number; hits: number; misses: number }> => {
      const n = batchNo++;
      const keys = mode === 'mixed' ? [...hotKeys, ...Array.from({ length: p.inputs - cached }, (_, i) => `new-${n}-${i}`)] : Array.from({ length: p.inputs }, (_, i) => `new-${n}-${i}`);
      const t0 = nowMs();
      const got = await cat.mget<Float32Array>(keys);
      const computed: Array<{ key: string; value: Float32Array }> = [];
      got.forEach((v, i) => {
        if (v === undefined) computed.push({ key: keys[i]!, value: makeEmbedding(p.dims, seedOf(keys[i]!)) });
      });
      if (computed.length && !(await cat.mset(computed))) failedWrites++;
      const ms = nowMs() - t0;
      // A hit must come back as the same Float32Array that was stored.
      const hit = got.findIndex((v) => v !== undefined);
      if (hit >= 0) {
        const v = got[hit]!;
        const want = makeEmbedding(p.dims, seedOf(keys[hit]!));
        if (!(v instanceof Float32Array) || v.length !== p.dims || v[7] !== want[7]) throw new Error(`hit for ${keys[hit]} is not the stored Float32Array`);
      }
      return { ms, hits: p.inputs - computed.length, misses: computed.length };
    };

    await batch('mixed');
    await batch('cold');
    const mixed: number[] = [];
    const cold: number[] = [];
    for (let r = 0; r < p.rounds; r++) {
      const order: Array<'mixed' | 'cold'> = r % 2 ? ['cold', 'mixed'] : ['mixed', 'cold'];
      for (const m of order) {
        const res = await batch(m);
        if (m === 'mixed' && res.hits !== cached) throw new Error(`mixed batch had ${res.hits} hits, expected ${cached}`);
        if (m === 'cold' && res.hits !== 0) throw new Error(`all-miss batch had ${res.hits} hits`);
        (m === 'mixed' ? mixed : cold).push(res.ms);
      }
    }

    // Round trips of one mixed batch: server-side commands (INFO commandstats delta, the snapshot's own INFO
    // removed) and client-side socket writes of the cache's connection (a pipeline or MULTI block is one write).
    const stream = (cache.client as unknown as { stream: Socket }).stream;
    const origWrite = stream.write;
    let writes = 0;
    stream.write = function (this: Socket, ...a: Parameters<Socket['write']>): boolean {
      writes++;
      return origWrite.apply(this, a);
    } as Socket['write'];
    const before = await commandCalls(admin);
    await batch('mixed');
    const delta = commandDelta(before, await commandCalls(admin));
    stream.write = origWrite;
    const commands = sumCalls(delta);

    const ratio = median(mixed) / median(cold);
    const rows: Row[] = [
      {
        id: '4a',
        figure: ROW_TITLES['4a'],
        ours: `90% cached: ${fmtMs(median(mixed))}`,
        baseline: `all-miss: ${fmtMs(median(cold))}`,
        ratio,
        target: '(lower is better; no target)',
        status: 'info',
        note:
          `${p.inputs} x ${p.dims}-dim Float32Array, ${cached} cached; mget + compute misses (deterministic fill, no model) + mset; median of ${p.rounds} alternating batches each` +
          (failedWrites ? `; ${failedWrites} mset call(s) answered false (degraded to a miss)` : ''),
      },
      {
        id: '4b',
        figure: ROW_TITLES['4b'],
        ours: `${writes} round trip${writes === 1 ? '' : 's'} (${commands} command${commands === 1 ? '' : 's'}: ${describeCalls(delta)})`,
        baseline: 'expected: 1 read + 1 write',
        ratio: null,
        ratioText: '—',
        target: '2 round trips',
        status: writes === 2 ? 'met' : 'missed',
        note:
          'round trips = socket writes of the cache client during one mixed batch (a pipeline/MULTI is one write); commands = INFO commandstats delta on the private server' +
          (ctx.privateRedis ? '' : ' (SHARED server: other clients may inflate it)'),
      },
    ];
    return { rows, details: { mixedMs: mixed, coldMs: cold, commands: delta, writes, failedWrites } };
  } finally {
    await cache.close();
    admin.disconnect();
  }
}
