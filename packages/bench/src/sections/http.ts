import { isDeepStrictEqual } from 'node:util';
import { forkChild } from '../child.js';
import type { Load } from '../service-process.js';
import { fmtMs, fmtNum, ROW_TITLES, spread, type Row } from '../results.js';
import { median, rotation } from '../stats.js';
import type { SectionContext } from './context.js';
import { probeL1, type L1Probe } from './l1.js';


type Route = 'nocache' | 'redis' | 'raw' | 'l1';

const DB = 1;

/**
 * Row 1: the server (Fastify + our cache) and autocannon each run in a child process. Routes are measured
 * in alternating rounds (order rotated every round); a ratio is the median of the per-round ratios, so a
 * noisy moment hits the two routes of a pair alike.
 */
export async function httpSection(ctx: SectionContext): Promise<{ rows: Row[]; details: unknown }> {
  const p = ctx.params.http;
  const l1: L1Probe = await probeL1(ctx.redisUrl, DB);
  ctx.log(`  L1 probe: ${l1.detail} -> ${l1.available ? 'available' : 'not available'}`);
  const routes: Route[] = l1.available ? ['nocache', 'redis', 'raw', 'l1'] : ['nocache', 'redis', 'raw'];

  const server = forkChild('http-server', { redisUrl: ctx.redisUrl, db: DB, service: 'bench-http', l1MaxBytes: 8 * 1024 * 1024 });
  const load = forkChild('http-load', {});
  try {
    const { address } = await server.firstMessage<{ address: string }>();
    await load.firstMessage();

    // The routes must answer the same document, or the comparison means nothing.
    const bodies = await Promise.all(routes.map(async (r) => (await fetch(`${address}/${r}`)).json()));
    for (let i = 1; i < bodies.length; i++) {
      if (!isDeepStrictEqual(bodies[0], bodies[i])) throw new Error(`/${routes[i]} answers a different body than /nocache`);
    }
    const bodyBytes = (await (await fetch(`${address}/redis`)).arrayBuffer()).byteLength;

    const serverCpu = async (): Promise<number> => (await server.request<{ cpuUs: number }>({ type: 'cpu' })).cpuUs;
    const run = async (route: Route, seconds: number): Promise<Load> => {
      const c0 = await serverCpu();
      const res = await load.request<Load>({ type: 'load', url: `${address}/${route}`, seconds, connections: p.connections }, (seconds + 30) * 1000);
      return { ...res, cpuUsPerReq: ((await serverCpu()) - c0) / Math.max(1, res.ok) };
    };

    for (const r of routes) await run(r, p.warmupSeconds);

    const samples: Record<Route, Load[]> = { nocache: [], redis: [], raw: [], l1: [] };
    for (let round = 0; round < p.rounds; round++) {
      for (const r of rotation(routes, round)) {
        const res = await run(r, p.seconds);
        if (res.non2xx || res.errors || res.timeouts) throw new Error(`/${r}: ${res.non2xx} non-2xx, ${res.errors} errors, ${res.timeouts} timeouts`);
        samples[r].push(res);
      }
      ctx.log(`  round ${round + 1}/${p.rounds}: ` + routes.map((r) => `${r} ${fmtNum(samples[r].at(-1)!.rps)} req/s`).join(', '));
    }

    const summary = (r: Route): { rps: number; p99: number } => ({ rps: median(samples[r].map((s) => s.rps)), p99: median(samples[r].map((s) => s.p99)) });
    const ratios = (r: Route): number[] => samples[r].map((s, i) => s.rps / samples.nocache[i]!.rps);
    const pairRatio = (r: Route): number => median(ratios(r));
    const base = summary('nocache');
    const cpu = (r: Route): string => `${fmtNum(median(samples[r].map((s) => s.cpuUsPerReq ?? Number.NaN)), 1)} µs`;
    const cell = (s: { rps: number; p99: number }): string => `${fmtNum(s.rps)} req/s, p99 ${fmtMs(s.p99)}`;
    const method = `${p.rounds} alternating rounds x ${p.seconds} s, ${p.connections} connections, ${bodyBytes} B body; medians`;

    const redis = summary('redis');
    const redisRatio = pairRatio('redis');
    const raw = summary('raw');
    const rawRatio = pairRatio('raw');
    const oursVsRaw = median(samples.redis.map((s, i) => s.rps / samples.raw[i]!.rps));
    const rows: Row[] = [
      {
        id: '1a',
        figure: ROW_TITLES['1a'],
        ours: cell(redis),
        baseline: `no cache: ${cell(base)}`,
        ratio: redisRatio,
        target: '>= 0.85x',
        status: redisRatio >= 0.85 ? 'met' : 'missed',
        note:
          `${method}; ratio = median of per-round ratios, ${spread(ratios('redis'))}; p99 from every response's own time (autocannon 'response' events); ` +
          `server CPU per request (noise-resistant): redis ${cpu('redis')}, no cache ${cpu('nocache')}; ` +
          `floor for a Redis hit, a bare ioredis GET of the same bytes: ${cell(raw)}, ${fmtNum(rawRatio, 2)}x no cache, CPU ${cpu('raw')}; ours vs that floor ${fmtNum(oursVsRaw, 2)}x`,
      },
    ];
    if (l1.available) {
      const s = summary('l1');
      const ratio = pairRatio('l1');
      rows.push({
        id: '1b',
        figure: ROW_TITLES['1b'],
        ours: cell(s),
        baseline: `no cache: ${cell(base)}`,
        ratio,
        target: '>= 0.95x',
        status: ratio >= 0.95 ? 'met' : 'missed',
        note: `${spread(ratios('l1'))}; server CPU per request: L1 ${cpu('l1')}, no cache ${cpu('nocache')}; ${l1.detail}`,
      });
    } else {
      rows.push({
        id: '1b',
        figure: ROW_TITLES['1b'],
        ours: 'not available',
        baseline: `no cache: ${cell(base)}`,
        ratio: null,
        target: '>= 0.95x',
        status: 'not available',
        note: `no L1 tier yet: ${l1.detail}`,
      });
    }
    return { rows, details: { l1Probe: l1, bodyBytes, samples } };
  } finally {
    await Promise.all([server.stop(), load.stop()]);
  }
}
