import type { L1Tier } from './l1.js';
import { CategoryCore, type CategoryContext } from './category/core.js';
import * as getOrSet from './category/get-or-set.js';
import * as invalidation from './category/invalidate.js';
import * as read from './category/read.js';
import * as write from './category/write.js';
import type { CacheResult, CategoryCache, GetOrSetOptions, L1Info, ManyEntry, Prefetch, ResolvedCategory, SetOptions } from './types.js';

export type { CategoryContext } from './category/core.js';

const NO_L1: L1Info = { entries: 0, bytes: 0, maxBytes: 0, enabled: false };
/** Options left out: one shared object rather than a new one per call (only ever read). */
const NO_OPTS: GetOrSetOptions = Object.freeze({});

/**
 * One category of a Cache: the public face only. The work is done by one module per concern under category/:
 * read.ts (get, has, mget), write.ts (set, mset, the WRITE script), get-or-set.ts (single-flight, lease, grace,
 * early refresh), lease.ts (the one ACQUIRE/RELEASE path), invalidate.ts, l1.ts, on the shared state in core.ts.
 */
export class Category implements CategoryCache {
  readonly name: string;
  readonly ttl: number;
  readonly genKey: string;
  readonly genField: string;
  private readonly core: CategoryCore;

  constructor(
    ctx: CategoryContext,
    readonly def: ResolvedCategory,
    /** The in-process tier, when the category has one (never for sliding categories). */
    private readonly l1?: L1Tier,
  ) {
    this.core = new CategoryCore(ctx, def, l1);
    this.name = def.name;
    this.ttl = def.ttl;
    this.genKey = this.core.genKey;
    this.genField = this.core.genField;
  }

  key(key: string): string {
    return this.core.key(key);
  }

  get<V = unknown>(key: string): Promise<V | undefined> {
    return read.get<V>(this.core, key);
  }

  has(key: string): Promise<boolean> {
    return read.has(this.core, key);
  }

  mget<V = unknown>(keys: string[]): Promise<Array<V | undefined>> {
    return read.mget<V>(this.core, keys);
  }

  set<V = unknown>(key: string, value: V, opts: SetOptions = NO_OPTS): Promise<boolean> {
    return write.set(this.core, key, value, opts);
  }

  mset<V = unknown>(entries: ManyEntry<V>[]): Promise<boolean> {
    return write.mset(this.core, entries);
  }

  async delete(key: string): Promise<boolean> {
    return (await invalidation.invalidate(this.core, [key])) > 0;
  }

  invalidate(keys: string[]): Promise<number> {
    return invalidation.invalidate(this.core, keys);
  }

  invalidatePattern(glob: string): Promise<number> {
    return invalidation.invalidatePattern(this.core, glob);
  }

  clear(): Promise<number> {
    return invalidation.clear(this.core);
  }

  getOrSet<V>(key: string, loader: () => Promise<V>, opts: GetOrSetOptions = NO_OPTS): Promise<V> {
    return getOrSet.getOrSet(this.core, key, loader, opts, getOrSet.Answer.Value) as Promise<V>;
  }

  getOrSetResult<V>(key: string, loader: () => Promise<V>, opts: GetOrSetOptions = NO_OPTS): Promise<CacheResult<V>> {
    return getOrSet.getOrSet(this.core, key, loader, opts, getOrSet.Answer.Result) as Promise<CacheResult<V>>;
  }

  wrapJson(key: string, loader: () => Promise<unknown>, opts: GetOrSetOptions = NO_OPTS): Promise<Buffer> {
    return getOrSet.getOrSet(this.core, key, loader, opts, getOrSet.Answer.Json) as Promise<Buffer>;
  }

  wrapJsonResult(key: string, loader: () => Promise<unknown>, opts: GetOrSetOptions = NO_OPTS): Promise<CacheResult<Buffer>> {
    return getOrSet.getOrSet(this.core, key, loader, opts, getOrSet.Answer.JsonResult) as Promise<CacheResult<Buffer>>;
  }

  prefetch(key: string): Prefetch {
    return getOrSet.prefetch(this.core, key);
  }

  /**
   * Invalidations call this once Redis answered them (or failed to): these keys' loads and refreshes (all of the
   * category's without `fulls`) go on for the callers that share them, but a later getOrSet starts its own.
   */
  detachLoads(fulls?: readonly string[]): void {
    this.core.detachLoads(fulls);
  }

  l1Info(): L1Info {
    return this.l1?.info() ?? { ...NO_L1 };
  }

  /** getOrSet calls that waited for another holder's lease, this process since start. */
  leaseWaits(): number {
    return this.core.leaseWaits;
  }

  /** Background refreshes still running (Cache.close waits for them, bounded). */
  pending(): Promise<unknown>[] {
    return this.core.refreshing.pending();
  }
}
