import { bento, cacheManager } from '../competitors.js';
import { ourCache, ready } from '../ours.js';
import { makeSearchAnswer, type SearchAnswer } from '../payload.js';
import { client } from '../redis.js';
import { fmtNum, ROW_TITLES, spread, type Row } from '../results.js';
import { median, rotation, runBounded } from '../stats.js';
import type { SectionContext } from './context.js';

const DB = 2;
type Who = 'ours' | 'bentocache' | 'cache-manager' | 'raw';

/**
 * Row 2: read-hit throughput of getOrSet-style calls, every library on the same private Redis, same ~2 KB
 * payload, same key set, same bounded concurrency, in alternating rounds. Every call must be a hit: a
 * loader call during the timed rounds fails the row.
 */
export async function librarySection(ctx: SectionContext): Promise<{ rows: Row[]; details: unknown }> {
  const p = ctx.params.library;
  const answer = makeSearchAnswer();
  const json = JSON.stringify(answer);
  const keys = Array.from({ length: p.keys }, (_, i) => `answer-${i}`);
  let loaderCalls = 0;
  const loader = async (): Promise<SearchAnswer> => {
    loaderCalls++;
    return answer;
  };

  const ours = ourCache(ctx.redisUrl, 'bench-lib', { answers: { ttl: 3600 } }, DB);
  const cat = ours.category('answers');
  const bentoClient = client(ctx.redisUrl, DB, 'bench-bentocache');
  const bc = bento(bentoClient, 'bench-bento');
  const { cm, close: closeCm } = await cacheManager(ctx.redisUrl, DB, 'bench-cm');
  const raw = client(ctx.redisUrl, DB, 'bench-raw');
  try {
    await ready(ours);
    await runBounded(keys.length, 20, async (i) => {
      const k = keys[i]!;
      if (!(await cat.set(k, answer))) throw new Error(`our set of ${k} failed`);
      await bc.set({ key: k, value: answer, ttl: '1h' });
      await cm.set(k, answer, 3_600_000);
      await raw.set(`bench-raw:${k}`, json, 'EX', 3600);
    });

    const op: Record<Who, (k: string) => Promise<unknown>> = {
      ours: (k) => cat.getOrSet(k, loader),
      bentocache: (k) => bc.getOrSet({ key: k, factory: loader, ttl: '1h' }),
      'cache-manager': (k) => cm.wrap(k, loader, 3_600_000),
      raw: async (k) => JSON.parse((await raw.get(`bench-raw:${k}`)) ?? 'null') as unknown,
    };
    const who: Who[] = ['ours', 'bentocache', 'cache-manager', 'raw'];

    // Each answers the stored document, not just something.
    for (const w of who) {
      const got = (await op[w](keys[0]!)) as SearchAnswer | null;
      if (!got || got.results?.length !== answer.results.length) throw new Error(`${w} did not read back the seeded answer`);
    }
    // Warm-up: JIT and connection buffers, not timed.
    for (const w of who) await runBounded(Math.min(p.ops, 2000), p.concurrency, (i) => op[w](keys[i % keys.length]!));
    loaderCalls = 0;

    const opsPerSec: Record<Who, number[]> = { ours: [], bentocache: [], 'cache-manager': [], raw: [] };
    // Client CPU per call (user + system of this process): barely moved by other processes' load, unlike ops/s.
    const cpuUs: Record<Who, number[]> = { ours: [], bentocache: [], 'cache-manager': [], raw: [] };
    for (let round = 0; round < p.rounds; round++) {
      for (const w of rotation(who, round)) {
        const c0 = process.cpuUsage();
        const ms = await runBounded(p.ops, p.concurrency, (i) => op[w](keys[i % keys.length]!));
        const c = process.cpuUsage(c0);
        opsPerSec[w].push(p.ops / (ms / 1000));
        cpuUs[w].push((c.user + c.system) / p.ops);
      }
      ctx.log(`  round ${round + 1}/${p.rounds}: ` + who.map((w) => `${w} ${fmtNum(opsPerSec[w].at(-1)!)}`).join(', ') + ' ops/s');
    }
    if (loaderCalls > 0) throw new Error(`${loaderCalls} loader calls during timed rounds: not every call was a hit`);

    const med = (w: Who): number => median(opsPerSec[w]);
    const ratios = (w: Who): number[] => opsPerSec.ours.map((o, i) => o / opsPerSec[w][i]!);
    const ratio = (w: Who): number => median(ratios(w));
    const oursCell = `${fmtNum(med('ours'))} ops/s`;
    const cpuMed = (w: Who): string => `${fmtNum(median(cpuUs[w]), 1)} µs`;
    const note =
      `${p.rounds} alternating rounds x ${fmtNum(p.ops)} ops, ${p.concurrency} in flight, ${p.keys} keys, ${json.length} B JSON; ops/s are medians, ratio = median of per-round ratios; ` +
      `client CPU per hit (noise-resistant): ours ${cpuMed('ours')}, bentocache ${cpuMed('bentocache')}, cache-manager ${cpuMed('cache-manager')}, raw ${cpuMed('raw')}`;
    const mk = (id: '2a' | '2b' | '2c', w: Who, label: string, target: number): Row => {
      const r = ratio(w);
      return {
        id,
        figure: ROW_TITLES[id],
        ours: oursCell,
        baseline: `${label}: ${fmtNum(med(w))} ops/s`,
        ratio: r,
        target: `>= ${target.toFixed(1)}x`,
        status: r >= target ? 'met' : 'missed',
        note: id === '2a' ? `${note}; ${spread(ratios(w))}` : spread(ratios(w)),
      };
    };
    const rows = [
      mk('2a', 'bentocache', 'bentocache', 1.0),
      mk('2b', 'cache-manager', 'cache-manager', 1.5),
      mk('2c', 'raw', 'raw ioredis', 0.8),
    ];
    return { rows, details: { opsPerSec, cpuUsPerOp: cpuUs, payloadBytes: json.length } };
  } finally {
    await ours.close();
    await bc.disconnect().catch(() => undefined);
    bentoClient.disconnect();
    await closeCm().catch(() => undefined);
    raw.disconnect();
  }
}
