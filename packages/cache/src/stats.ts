import type { RedisRunner } from './runner.js';
import type { CategoryCounters } from './types.js';

type Counters = Required<CategoryCounters>;
export type CounterName = keyof Counters;
const NAMES: CounterName[] = ['hits', 'misses', 'sets', 'deletes', 'errors', 'l1_hits'];

const zero = (): Counters => ({ hits: 0, misses: 0, sets: 0, deletes: 0, errors: 0, l1_hits: 0 });

/**
 * Per-category counters. `totals` is this process since start (synchronous, for /metrics); `pending` is what
 * has not yet been added to the service-wide hash `<service>:__stats` that every replica adds to.
 */
export class StatsRecorder {
  private readonly totals = new Map<string, Counters>();
  private readonly pending = new Map<string, Counters>();
  private chain: Promise<void> = Promise.resolve();

  /** `withL1`: categories that have an in-process tier (only they report l1_hits). */
  constructor(
    categories: string[],
    private readonly withL1: ReadonlySet<string> = new Set(),
  ) {
    for (const c of categories) {
      this.totals.set(c, zero());
      this.pending.set(c, zero());
    }
  }

  incr(category: string, name: CounterName, n = 1): void {
    if (n === 0) return;
    const t = this.totals.get(category);
    const p = this.pending.get(category);
    if (t) t[name] += n;
    if (p) p[name] += n;
  }

  counters(): Record<string, CategoryCounters> {
    const out: Record<string, CategoryCounters> = {};
    for (const [c, t] of this.totals) {
      const { l1_hits, ...rest } = t;
      out[c] = this.withL1.has(c) ? { ...rest, l1_hits } : rest;
    }
    return out;
  }

  /** Adds the deltas since the last flush to the service-wide hash in one pipeline; failed deltas are kept for the next flush. */
  flush(runner: RedisRunner, hashKey: string): Promise<void> {
    this.chain = this.chain.then(() => this.flushOnce(runner, hashKey));
    return this.chain;
  }

  private async flushOnce(runner: RedisRunner, hashKey: string): Promise<void> {
    const taken: Array<[string, CounterName, number]> = [];
    for (const [c, p] of this.pending) {
      for (const name of NAMES) {
        if (p[name] !== 0) {
          taken.push([c, name, p[name]]);
          p[name] = 0;
        }
      }
    }
    if (taken.length === 0) return;
    try {
      await runner.run(async (client) => {
        const pipe = client.pipeline();
        for (const [c, name, n] of taken) pipe.hincrby(hashKey, `${c}:${name}`, n);
        const res = await pipe.exec();
        const failed = res?.find(([err]) => err);
        if (!res || failed) throw failed?.[0] ?? new Error('stats pipeline failed');
      });
    } catch {
      // Put the deltas back. (A pipeline that timed out may still land; counting twice is preferred to losing counts.)
      for (const [c, name, n] of taken) {
        const p = this.pending.get(c);
        if (p) p[name] += n;
      }
    }
  }
}

export function hitRate(hits: number, misses: number): number {
  const total = hits + misses;
  return total === 0 ? 0 : hits / total;
}

/** `INFO` text -> field map. */
export function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    if (!line || line.startsWith('#')) continue;
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}
