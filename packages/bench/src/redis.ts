import { Redis } from 'ioredis';
import { parseInfo, startRedisServer, type RedisServer } from '@aicache/test-redis';

export interface BenchRedis {
  url: string;
  host: string;
  port: number;
  /** A private redis-server this run started (INFO commandstats deltas are then ours alone). */
  private: boolean;
  stop(): Promise<void>;
}

/**
 * The Redis every row runs against: a private redis-server on a free port, or BENCH_REDIS_URL
 * (a URL, or "1" to take REDIS_URL) when a run should target a given server. The shared Redis on
 * port 6379 is refused unless BENCH_ALLOW_SHARED=1: the invalidation row writes a million keys.
 */
export async function benchRedis(env: Record<string, string | undefined> = process.env): Promise<BenchRedis> {
  const chosen = env.BENCH_REDIS_URL;
  if (chosen) {
    const url = chosen === '1' || chosen === 'true' ? env.REDIS_URL : chosen;
    if (!url) throw new Error('BENCH_REDIS_URL=1 asks for REDIS_URL, which is unset');
    const u = new URL(url);
    const port = Number(u.port || 6379);
    if (port === 6379 && env.BENCH_ALLOW_SHARED !== '1') {
      throw new Error(`refusing ${u.host}: port 6379 is the shared Redis; set BENCH_ALLOW_SHARED=1 if you really mean it`);
    }
    return { url: url.replace(/\/\d+$/, ''), host: u.hostname, port, private: false, stop: async () => undefined };
  }
  // Bench figures must not depend on persistence: no RDB, no AOF, no eviction.
  const server: RedisServer = await startRedisServer({ args: ['--maxmemory', '0'] });
  return { url: server.url, host: server.host, port: server.port, private: true, stop: () => server.stop() };
}

export function client(url: string, db = 0, name?: string): Redis {
  const r = new Redis(url, { db, lazyConnect: false, maxRetriesPerRequest: 1, ...(name ? { connectionName: name } : {}) });
  r.on('error', () => undefined);
  return r;
}

export { parseInfo };

/** calls per command from INFO commandstats, e.g. { get: 12, mget: 1 }. */
export async function commandCalls(r: Redis): Promise<Record<string, number>> {
  const info = parseInfo(await r.info('commandstats'));
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(info)) {
    if (!k.startsWith('cmdstat_')) continue;
    const m = /calls=(\d+)/.exec(v);
    if (m) out[k.slice('cmdstat_'.length)] = Number(m[1]);
  }
  return out;
}

/**
 * Commands run between two commandstats snapshots, less the INFO calls that took the snapshots
 * (each snapshot counts itself once in cmdstat_info before it reads the table).
 */
export function commandDelta(before: Record<string, number>, after: Record<string, number>, ownInfoCalls = 1): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) {
    const d = v - (before[k] ?? 0) - (k === 'info' ? ownInfoCalls : 0);
    if (d > 0) out[k] = d;
  }
  return out;
}

export function sumCalls(d: Record<string, number>): number {
  return Object.values(d).reduce((a, b) => a + b, 0);
}

export function describeCalls(d: Record<string, number>): string {
  const parts = Object.entries(d).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}×${v}`);
  return parts.length ? parts.join(' ') : 'none';
}

/** Longest single command the server ran since `slowlogReset`, from SLOWLOG (entries over `thresholdUs` only). */
export interface SlowestCommand {
  us: number;
  command: string;
}

export async function slowlogReset(r: Redis, thresholdUs: number): Promise<void> {
  await r.config('SET', 'slowlog-log-slower-than', String(thresholdUs));
  await r.config('SET', 'slowlog-max-len', '10000');
  await r.call('SLOWLOG', 'RESET');
}

export async function slowestCommand(r: Redis): Promise<SlowestCommand | null> {
  const entries = (await r.call('SLOWLOG', 'GET', '10000')) as Array<[number, number, number, string[]]>;
  let best: SlowestCommand | null = null;
  for (const e of entries) {
    const us = Number(e[2]);
    if (!best || us > best.us) best = { us, command: (e[3] ?? []).slice(0, 1).join(' ').toUpperCase() };
  }
  return best;
}
