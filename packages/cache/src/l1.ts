import { LRUCache } from 'lru-cache';
import { decode, type EntryMeta } from './serialization.js';
import type { L1Info } from './types.js';

/** One in-process entry: the decoded value, or (written by set/mset) the encoded bytes, decoded on the first hit. */
export interface L1Entry {
  value: unknown;
  raw: Buffer | undefined;
  meta: EntryMeta | undefined;
}

/** Past this many remembered evictions the tier forgets them and refuses every fill begun before (bounded memory). */
const MAX_TOUCHED = 4096;

/**
 * The in-process tier of one category: an LRU bounded by the encoded size of its entries (payload + key bytes),
 * each entry living at most min(its remaining TTL in Redis / logical expiry, the category's L1 cap).
 *
 * Race guard: a fill from a Redis read or write must not land after an eviction that happened while the call was
 * in flight (a remote overwrite's message can be handled before our older GET reply). Every operation takes a
 * token (`begin()`) before it goes to Redis; evictions are numbered; a fill is refused when its key, or the whole
 * tier, was evicted after the token was taken, or while the tier is disabled.
 */
export class L1Tier {
  private readonly lru: LRUCache<string, L1Entry>;
  private seq = 0;
  /** Fills begun before this number are refused (tier cleared, enabled again, or too many evictions to track). */
  private wideSeq = 0;
  private readonly touched = new Map<string, number>();
  private on = false;

  constructor(
    readonly maxBytes: number,
    readonly ttlCapMs: number,
  ) {
    this.lru = new LRUCache<string, L1Entry>({ maxSize: maxBytes, ttl: ttlCapMs, allowStale: false, updateAgeOnGet: false });
  }

  get enabled(): boolean {
    return this.on;
  }

  /** A live entry, or undefined. Values are shared by every caller that hits: they must not be mutated. */
  get(key: string): L1Entry | undefined {
    const e = this.lru.get(key);
    if (e?.raw) {
      e.value = decode(e.raw).value;
      e.raw = undefined;
    }
    return e;
  }

  /** Token for a Redis call whose result may fill the tier. */
  begin(): number {
    return this.seq;
  }

  /** After a Redis read: stores the entry unless it was evicted since `token`. */
  fill(key: string, token: number, entry: L1Entry, size: number, ttlMs: number): void {
    if (this.fillable(key, token)) this.put(key, entry, size, ttlMs);
  }

  /**
   * After our own write was accepted: evicts the key (so reads begun before cannot fill an older value) and stores
   * the new entry unless the key was evicted while the write was in flight (then which write won is unknown).
   */
  store(key: string, token: number, entry: L1Entry, size: number, ttlMs: number): void {
    const ok = this.fillable(key, token);
    this.touch(key);
    if (ok) this.put(key, entry, size, ttlMs);
  }

  evict(keys: Iterable<string>): void {
    for (const k of keys) this.touch(k);
  }

  evictAll(): void {
    this.wideSeq = ++this.seq;
    this.touched.clear();
    this.lru.clear();
  }

  /** The invalidation channel is (again) subscribed: fills begun before are refused, they may have missed a message. */
  enable(): void {
    this.wideSeq = ++this.seq;
    this.touched.clear();
    this.on = true;
  }

  /** The invalidation channel was lost: nothing is served or stored until it is subscribed again. */
  disable(): void {
    this.on = false;
    this.evictAll();
  }

  info(): L1Info {
    return { entries: this.lru.size, bytes: this.lru.calculatedSize, maxBytes: this.maxBytes, enabled: this.on };
  }

  private fillable(key: string, token: number): boolean {
    return this.on && this.wideSeq <= token && (this.touched.get(key) ?? 0) <= token;
  }

  private touch(key: string): void {
    const s = ++this.seq;
    this.lru.delete(key);
    if (this.touched.size >= MAX_TOUCHED) {
      this.wideSeq = s;
      this.touched.clear();
    } else {
      this.touched.set(key, s);
    }
  }

  private put(key: string, entry: L1Entry, size: number, ttlMs: number): void {
    const ttl = Math.min(Math.floor(ttlMs), this.ttlCapMs);
    if (ttl < 1) return;
    // An entry larger than maxBytes is refused by the LRU (and an older one under the key dropped).
    this.lru.set(key, entry, { size: Math.max(1, Math.ceil(size)), ttl });
  }
}
