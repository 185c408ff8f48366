import { randomUUID } from 'node:crypto';
import type { KeyLayout } from './layout.js';
import type { RedisRunner } from './runner.js';
import { FLUSH, runScript } from './scripts.js';
import type { CategoryCounters } from './types.js';

type Counters = Required<CategoryCounters>;
export type CounterName = keyof Counters;
const NAMES: CounterName[] = ['hits', 'misses', 'sets', 'deletes', 'errors', 'l1_hits'];

const zero = (): Counters => ({ hits: 0, misses: 0, sets: 0, deletes: 0, errors: 0, l1_hits: 0 });

/** How long Redis remembers the last batch a replica added (its marker key); a batch retried later than this could count twice. */
export const FLUSH_MARKER_TTL_MS = 24 * 3600 * 1000;

interface Batch {
  seq: number;
  /** `<category>:<counter>`, delta */
  deltas: Array<[string, number]>;
}

/**
 * Per-category counters. `totals` is this process since start (synchronous, for /metrics); `pending` is what
 * has not yet been added to the service-wide hash `<service>:__stats` that every replica adds to.
 */
export class StatsRecorder {
  private readonly totals = new Map<string, Counters>();
  private readonly pending = new Map<string, Counters>();
  private chain: Promise<void> = Promise.resolve();
  /** Names this process's flush marker in Redis. */
  private readonly replica = randomUUID();
  private seq = 0;
  /** A batch whose flush failed: sent again as it is (same sequence number) before anything newer. */
  private unsent: Batch | undefined;

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

  /** One category's two counter sets, for a caller that counts on the request path without a lookup per call. */
  countersOf(category: string): { totals: Counters; pending: Counters } | undefined {
    const totals = this.totals.get(category);
    const pending = this.pending.get(category);
    return totals && pending ? { totals, pending } : undefined;
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

  /**
   * Adds the counts since the last flush to the service-wide hash, once. Each batch carries a sequence number that
   * Redis checks against this replica's marker, so a batch whose flush timed out (and may have landed) is sent again
   * without being added twice; newer counts wait until it went through.
   */
  flush(runner: RedisRunner, layout: KeyLayout): Promise<void> {
    this.chain = this.chain.then(() => this.flushOnce(runner, layout));
    return this.chain;
  }

  private take(): Batch | undefined {
    const deltas: Array<[string, number]> = [];
    for (const [c, p] of this.pending) {
      for (const name of NAMES) {
        if (p[name] !== 0) {
          deltas.push([`${c}:${name}`, p[name]]);
          p[name] = 0;
        }
      }
    }
    return deltas.length === 0 ? undefined : { seq: ++this.seq, deltas };
  }

  private async flushOnce(runner: RedisRunner, layout: KeyLayout): Promise<void> {
    const keys = [layout.statsKey, layout.flushMarker(this.replica)];
    // A batch that failed before goes first, as it was; then what was counted since.
    if (this.unsent && !(await this.send(runner, keys, this.unsent))) return;
    this.unsent = this.take();
    if (this.unsent) await this.send(runner, keys, this.unsent);
  }

  /** True once Redis added the batch (or had added it already); on failure it stays in `unsent` for the next flush. */
  private async send(runner: RedisRunner, keys: string[], batch: Batch): Promise<boolean> {
    try {
      await runner.run((c) => runScript(c, FLUSH, keys, [batch.seq, FLUSH_MARKER_TTL_MS, ...batch.deltas.flat()]));
    } catch {
      return false;
    }
    this.unsent = undefined;
    return true;
  }
}

/** Percent of reads the cache answered, one decimal (89.3), 0 when there were none. */
export function hitRatePercent(hits: number, misses: number): number {
  const total = hits + misses;
  return total === 0 ? 0 : Math.round((hits * 1000) / total) / 10;
}

