import { randomBytes } from 'node:crypto';
import { forkChild, type Child } from '../child.js';
import { client } from '../redis.js';
import { fmtMs, ROW_TITLES, type Row } from '../results.js';
import { max, median, rotation, sleep } from '../stats.js';
import type { SectionContext } from './context.js';

const DB = 3;
type Lib = 'ours' | 'bentocache' | 'cache-manager';

interface WorkerResult {
  ok: number;
  wrong: number;
  failed: number;
  ms: number;
}

/**
 * Row 3: N child processes (replicas) x M concurrent getOrSet on one cold key, loader ~50 ms that INCRs a
 * counter key; the counter afterwards is how many times the loader ran across all replicas.
 */
export async function stampedeSection(ctx: SectionContext): Promise<{ rows: Row[]; details: unknown }> {
  const p = ctx.params.stampede;
  const workers: Child[] = Array.from({ length: p.processes }, () => forkChild('stampede-worker', { redisUrl: ctx.redisUrl, db: DB }));
  const admin = client(ctx.redisUrl, DB);
  try {
    await Promise.all(workers.map((w) => w.firstMessage()));
    const libs: Lib[] = ['ours', 'bentocache', 'cache-manager'];
    const runs: Record<Lib, number[]> = { ours: [], bentocache: [], 'cache-manager': [] };
    const wallMs: Record<Lib, number[]> = { ours: [], bentocache: [], 'cache-manager': [] };
    const problems: string[] = [];
    for (let round = 0; round < p.rounds; round++) {
      for (const lib of rotation(libs, round)) {
        const id = randomBytes(4).toString('hex');
        const key = `stampede-${lib}-${round}-${id}`;
        const counterKey = `bench-stampede-counter:${id}`;
        const startAt = Date.now() + 300;
        const results = await Promise.all(
          workers.map((w) => w.request<WorkerResult>({ type: 'run', lib, key, counterKey, callers: p.callersPerProcess, loaderMs: p.loaderMs, startAt }, 60_000)),
        );
        await sleep(100);
        runs[lib].push(Number((await admin.get(counterKey)) ?? 0));
        wallMs[lib].push(max(results.map((r) => r.ms)));
        const ok = results.reduce((a, r) => a + r.ok, 0);
        const total = p.processes * p.callersPerProcess;
        if (ok !== total) {
          problems.push(`${lib} round ${round + 1}: ${ok}/${total} callers got the value (${results.reduce((a, r) => a + r.wrong, 0)} wrong/undefined, ${results.reduce((a, r) => a + r.failed, 0)} threw)`);
        }
      }
      ctx.log(`  round ${round + 1}/${p.rounds}: loader runs ` + libs.map((l) => `${l} ${runs[l].at(-1)}`).join(', '));
    }
    const worst = (l: Lib): number => max(runs[l]);
    const oursRuns = worst('ours');
    const cell = (l: Lib): string => `${worst(l)} run${worst(l) === 1 ? '' : 's'} (all callers served in ${fmtMs(median(wallMs[l]))})`;
    const row: Row = {
      id: '3',
      figure: ROW_TITLES['3'],
      ours: cell('ours'),
      baseline: `bentocache ${cell('bentocache')}; cache-manager ${cell('cache-manager')}`,
      ratio: null,
      ratioText: '—',
      target: 'ours = 1',
      status: oursRuns === 1 && problems.filter((x) => x.startsWith('ours')).length === 0 ? 'met' : 'missed',
      note:
        `${p.processes} processes x ${p.callersPerProcess} callers, loader ${p.loaderMs} ms + INCR; worst of ${p.rounds} round(s); time = median wall time until every caller of a process had its value` +
        (problems.length ? `. Problems: ${problems.join('; ')}` : ''),
    };
    return { rows: [row], details: { runs, wallMs, problems } };
  } finally {
    admin.disconnect();
    await Promise.all(workers.map((w) => w.stop()));
  }
}
