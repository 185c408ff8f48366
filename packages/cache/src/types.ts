import type { RedisClient, RedisTopology } from './connection.js';
import type { RedisOptions } from 'ioredis';

/** What a service declares for one cache category. */
export interface CategorySpec {
  /** Default TTL in seconds. `CACHE_TTL_<CATEGORY>` (upper-cased name) overrides it. */
  ttl: number;
  /** Refresh the TTL on every read hit (sliding expiry). */
  sliding?: boolean;
  /** Serve an entry this many seconds past its TTL while one caller refreshes it (stale-while-revalidate / stale-if-error). */
  grace?: number;
  /**
   * Byte bound of the optional in-process L1 tier for this category (encoded value + key bytes; decoded objects
   * take more heap than that); 0 or unset: no L1. Not with `sliding` (an L1 hit would not extend the TTL in Redis).
   * Replicas (same service name) drop each other's changed entries over Redis pub/sub; values served from L1 are
   * shared between callers and must not be mutated.
   */
  l1MaxBytes?: number;
  /**
   * Longest time in seconds an entry is served from L1 (it also never outlives its TTL in Redis). Bounds staleness
   * should an invalidation message be lost. Default 60.
   */
  l1TtlSeconds?: number;
}

/** A category after env overrides were applied. */
export interface ResolvedCategory {
  name: string;
  /** Effective TTL in seconds. */
  ttl: number;
  /** The env variable that can override it, e.g. CACHE_TTL_EMBEDDINGS. */
  envVar: string;
  /** Where the TTL came from. */
  source: 'default' | 'env';
  sliding: boolean;
  grace: number;
  l1MaxBytes: number;
  /** L1 cap in seconds; present when the category has an L1 (l1MaxBytes > 0). */
  l1TtlSeconds?: number;
}

/** Minimal logger contract (pino-compatible). */
export interface CacheLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface CacheOptions<C extends string = string> {
  /** Service name: every key starts with `<service>:`. Lower-case letters, digits and dashes. */
  service: string;
  categories: Record<C, CategorySpec>;
  /** Env for CACHE_TTL_* overrides. Default: process.env. */
  env?: Record<string, string | undefined>;
  /**
   * An existing client: one server (also through Sentinel) or a Cluster (the cache then lays its keys out in
   * hash-tagged buckets). The cache never closes a client it was handed.
   */
  client?: RedisClient;
  /**
   * Options for a client the cache creates (and closes). Ignored when `client` is given. With a Sentinel or Cluster
   * `topology` they are each server's settings (see createRedisClient).
   */
  connection?: RedisOptions;
  /** Where Redis is, for a client the cache creates: one server (default), a Sentinel set or a Cluster. */
  topology?: RedisTopology;
  /** Random TTL jitter as a fraction of the TTL (0..0.5). Default 0.05. */
  jitter?: number;
  /** Upper bound of one cache command in ms; past it the call is a miss. Default 250. */
  commandTimeoutMs?: number;
  /** Consecutive failures that open the circuit, and how long it stays open. */
  breaker?: { failureThreshold?: number; cooldownMs?: number };
  /** How often per-process counters are added to the service-wide totals in Redis. Default 1000 ms. */
  statsFlushIntervalMs?: number;
  /**
   * Cross-replica stampede lease for getOrSet: how long a lease lives, and how long other replicas wait for the
   * holder's value before running the loader themselves. Default 10000 ms.
   */
  leaseTtlMs?: number;
  logger?: CacheLogger;
}

export interface SetOptions {
  /** TTL in seconds for this write; default: the category's. */
  ttl?: number;
  /** Tags for group invalidation (Cache.invalidateTags). */
  tags?: string[];
}

export interface GetOrSetOptions extends SetOptions {
  /** Override the category's grace (seconds) for stale-while-revalidate / stale-if-error. */
  grace?: number;
  /** Take a lease in Redis so that only one replica runs the loader. Default true. */
  lease?: boolean;
  /** Early probabilistic refresh (XFetch) with this beta (typically 1). Off by default. */
  earlyRefreshBeta?: number;
  /**
   * The read this call starts with, sent earlier by `prefetch(key)` of the same category and key: the call answers
   * from it (a hit, or on a miss the single-flight load) instead of reading again. Ignored when it is for another
   * key or category, or was already used by another call.
   */
  prefetched?: Prefetch;
}

/**
 * A cache read sent ahead of the getOrSet-style call that may use it (CategoryCache.prefetch), so that the read
 * travels together with other work the caller does first. Counts nothing until a call uses it: one dropped (never
 * passed to a call) is neither a hit nor a miss.
 */
export interface Prefetch {
  /** The key (the category's key part) it reads. */
  readonly key: string;
}

/**
 * Values: plain JSON-serializable values are stored as JSON; `string` and `Buffer` are stored as they
 * are (a cached HTTP body comes back as the same bytes); `Float32Array` is stored as raw float32 bytes.
 * A read returns the same kind of value that was written.
 */
export type CacheValue = unknown;

export interface ManyEntry<V = CacheValue> {
  key: string;
  value: V;
  ttl?: number;
  tags?: string[];
}

/** A value and whether the cache answered it. */
export interface CacheResult<V> {
  value: V;
  hit: boolean;
}

/** All operations on one category. Every call degrades to a miss (or false / 0) when Redis fails. */
export interface CategoryCache {
  readonly name: string;
  /** Effective TTL in seconds. */
  readonly ttl: number;
  /** The full Redis key: `<service>:<category>:<key>`, or `<service>:<category>:#<sha256>` past ~200 bytes. */
  key(key: string): string;
  get<V = unknown>(key: string): Promise<V | undefined>;
  set<V = unknown>(key: string, value: V, opts?: SetOptions): Promise<boolean>;
  delete(key: string): Promise<boolean>;
  has(key: string): Promise<boolean>;
  /** One round trip for all keys; results in the order of `keys`. */
  mget<V = unknown>(keys: string[]): Promise<Array<V | undefined>>;
  /** One round trip for all entries. */
  mset<V = unknown>(entries: ManyEntry<V>[]): Promise<boolean>;
  /** Read, or run the loader once per key (per process, and per service with the lease) and store its result. */
  getOrSet<V>(key: string, loader: () => Promise<V>, opts?: GetOrSetOptions): Promise<V>;
  /**
   * getOrSet that also says where the value came from: `hit` when the cache (L1, Redis, a stale entry within
   * grace, or another replica's load) answered, false when a loader run in this process produced it. Callers
   * that waited on this process's loader run share its `hit: false`.
   */
  getOrSetResult<V>(key: string, loader: () => Promise<V>, opts?: GetOrSetOptions): Promise<CacheResult<V>>;
  /**
   * getOrSet for HTTP responses: stores JSON.stringify(loader result) as bytes and returns those bytes,
   * so a hit is replayed without a parse and re-stringify.
   */
  wrapJson(key: string, loader: () => Promise<unknown>, opts?: GetOrSetOptions): Promise<Buffer>;
  /** wrapJson with the hit/miss of getOrSetResult (for an `x-cache` header). */
  wrapJsonResult(key: string, loader: () => Promise<unknown>, opts?: GetOrSetOptions): Promise<CacheResult<Buffer>>;
  /**
   * Sends now the read a getOrSet-style call of `key` starts with, without counting it or loading anything: pass it
   * as `opts.prefetched` to that call, or drop it. Never rejects (a failing Redis is the call's miss, as its own read
   * would be). No Redis read when the in-process tier holds the key or a load of it is running in this process. On a
   * sliding category the read pushes the entry's TTL, as any read does, whether the prefetch is used or not.
   */
  prefetch(key: string): Prefetch;
  /** Removes these keys; answers how many existed. */
  invalidate(keys: string[]): Promise<number>;
  /** Removes keys of this category whose key part matches the glob (SCAN MATCH + UNLINK in batches). */
  invalidatePattern(glob: string): Promise<number>;
  /** Removes every key of this category. */
  clear(): Promise<number>;
  /** The in-process tier of this category, in this process (all zero and disabled when it has none). */
  l1Info(): L1Info;
}

export interface L1Info {
  entries: number;
  /** Sum of the entries' sizes (encoded value + key bytes), never above maxBytes. */
  bytes: number;
  maxBytes: number;
  /** False while the invalidation subscription is not confirmed (then nothing is served from or stored in L1). */
  enabled: boolean;
}

/** Counted in this process since start (Cache.counters()). */
export interface CategoryCounters {
  hits: number;
  misses: number;
  sets: number;
  deletes: number;
  errors: number;
  /** Hits served by the in-process tier (also counted in hits); present for categories with an L1. */
  l1_hits?: number;
}

export interface CategoryStats {
  hits: number;
  misses: number;
  sets: number;
  deletes: number;
  errors: number;
  /** Hits served by an in-process tier (also counted in hits), summed over replicas; present for categories with an L1. */
  l1_hits?: number;
  /** Percent of reads answered by the cache: 100 * hits / (hits + misses), one decimal (89.3); 0 when there were none. */
  hit_rate: number;
  ttl: number;
  /** Keys of this category now in Redis, or null where counting would be expensive. */
  keys: number | null;
}

export interface CacheStats {
  service: string;
  db: number;
  /** Redis answered. */
  connected: boolean;
  /** Seed-stack field names, kept for existing dashboards. These are SERVER-WIDE (all DBs, all clients). */
  memory_used: string | null;
  keyspace_hits: number | null;
  keyspace_misses: number | null;
  /** Percent, one decimal, of keyspace_hits / (keyspace_hits + keyspace_misses). */
  hit_rate: number | null;
  total_commands_processed: number | null;
  connected_clients: number | null;
  /** Says which figures are whose. */
  scope: { service: string; server: string };
  /** Counted by the cache library for this service, summed over every replica. */
  service_stats: {
    hits: number;
    misses: number;
    sets: number;
    deletes: number;
    errors: number;
    /** Percent, one decimal, as in each category. */
    hit_rate: number;
    categories: Record<string, CategoryStats>;
  };
  /** Redis INFO, server-wide. Null fields when Redis did not answer. */
  server: {
    version: string | null;
    uptime_seconds: number | null;
    used_memory: number | null;
    used_memory_human: string | null;
    maxmemory: number | null;
    maxmemory_policy: string | null;
    connected_clients: number | null;
    total_commands_processed: number | null;
    keyspace_hits: number | null;
    keyspace_misses: number | null;
    /** Percent, one decimal. */
    hit_rate: number | null;
  };
  /** On a Cluster: each master's own figures (server above sums them). */
  nodes?: Array<{
    address: string;
    keys: number | null;
    used_memory: number | null;
    keyspace_hits: number | null;
    keyspace_misses: number | null;
    connected_clients: number | null;
    total_commands_processed: number | null;
  }>;
}

export interface CacheHealth {
  status: 'up' | 'degraded' | 'down';
  /** PING round trip in ms, null when it failed. */
  latency_ms: number | null;
  circuit: 'closed' | 'open' | 'half-open';
  error?: string;
}
