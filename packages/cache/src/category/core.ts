import { Flights } from '../flights.js';
import type { L1Tier } from '../l1.js';
import type { L1Sync } from '../l1-sync.js';
import type { KeyLayout } from '../layout.js';
import type { ErrorReporter } from '../reporter.js';
import type { RedisRunner } from '../runner.js';
import type { CounterName, StatsRecorder } from '../stats.js';
import { categoryPrefix, genField, statsKey } from '../keys.js';
import { decode, type Decoded } from '../serialization.js';
import type { CacheResult, ResolvedCategory } from '../types.js';

/** What a category shares with its Cache. */
export interface CategoryContext {
  service: string;
  /** Key names: the layout of one server, or bucketed by hash tag on a Cluster. */
  layout: KeyLayout;
  runner: RedisRunner;
  stats: StatsRecorder;
  reporter: ErrorReporter;
  jitter: number;
  leaseTtlMs: number;
  /** Cross-replica L1 invalidation; present when some category has an L1. */
  sync?: L1Sync | undefined;
}

export function checkTtl(ttl: number | undefined): void {
  if (ttl !== undefined && !(Number.isFinite(ttl) && ttl > 0)) throw new RangeError(`ttl must be a positive number of seconds, got ${String(ttl)}`);
}

/**
 * The state every part of a category works on (reads, writes, get-or-set, invalidation): its names in Redis, its
 * in-process tier, the runs in flight, and the few rules they all apply (TTL jitter, grace, decoding, failures).
 */
export class CategoryCore {
  readonly name: string;
  readonly ttl: number;
  readonly prefix: string;
  /**
   * Invalidation generation: field `genField` of the hash genKeyOf(entry) (on one server `genKey`, the stats hash;
   * on a Cluster the entry's bucket's); see WRITE in scripts.ts.
   */
  readonly genKey: string;
  readonly genField: string;
  /** Single-flight: one loader per key per process; every concurrent caller awaits the same promise. */
  readonly inflight = new Flights<CacheResult<unknown>>();
  readonly refreshing = new Flights<void>();
  /** getOrSet calls that waited for another holder's lease (this process since start), for /metrics. */
  leaseWaits = 0;
  private readonly counters: ReturnType<StatsRecorder['countersOf']>;

  constructor(
    readonly ctx: CategoryContext,
    readonly def: ResolvedCategory,
    /** The in-process tier, when the category has one (never for sliding categories). */
    readonly l1: L1Tier | undefined,
  ) {
    this.name = def.name;
    this.ttl = def.ttl;
    this.prefix = categoryPrefix(ctx.service, def.name);
    this.genKey = statsKey(ctx.service);
    this.genField = genField(def.name);
    this.counters = ctx.stats.countersOf(def.name);
  }

  /** StatsRecorder.incr for this category, without its two map lookups (a hit counts on every call). */
  count(name: CounterName, n = 1): void {
    const c = this.counters;
    if (c === undefined || n === 0) return;
    c.totals[name] += n;
    c.pending[name] += n;
  }

  key(key: string): string {
    return this.ctx.layout.entry(this.name, String(key));
  }

  genKeyOf(full: string): string {
    return this.ctx.layout.genKeyOf(full);
  }

  /** True on a Cluster: multi-key calls are split by slot and node. */
  get cluster(): boolean {
    return this.ctx.layout.cluster;
  }

  graceOf(opts: { grace?: number }): number {
    if (this.def.sliding) return 0;
    const g = opts.grace ?? this.def.grace;
    return Number.isFinite(g) && g > 0 ? g : 0;
  }

  /** TTL with random jitter, ms: ttl * (1 + random * jitter), never below the TTL. */
  ttlMs(ttl = this.ttl): number {
    const base = ttl * 1000;
    return Math.max(Math.ceil(base), Math.round(base * (1 + Math.random() * this.ctx.jitter)));
  }

  safeDecode(buf: Buffer | null | undefined): Decoded | undefined {
    if (!buf || buf.length === 0) return undefined;
    try {
      return decode(buf);
    } catch (err) {
      this.ctx.reporter.report(err, { service: this.ctx.service, op: 'decode', category: this.name });
      return undefined;
    }
  }

  /** Decoded entry unless missing, unreadable or past its logical expiry (plain reads never serve stale). */
  fresh(buf: Buffer | null): Decoded | undefined {
    const entry = this.safeDecode(buf);
    if (!entry) return undefined;
    if (entry.meta && !this.def.sliding && Date.now() >= entry.meta.expiresAt) return undefined;
    return entry;
  }

  /** A Redis call failed: counted, reported, and the caller answers a miss. */
  fail(op: string, err: unknown): void {
    this.count('errors');
    this.ctx.reporter.report(err, { service: this.ctx.service, op, category: this.name });
  }

  /** Invalidations call this once Redis answered them (or failed to); see Category.detachLoads. */
  detachLoads(fulls?: readonly string[]): void {
    this.inflight.detach(fulls);
    this.refreshing.detach(fulls);
  }
}
