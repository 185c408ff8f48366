import type { ClusterOptions, Redis, RedisOptions } from 'ioredis';
import { Category } from './category.js';
import { assertServiceName, DEFAULT_L1_TTL_SECONDS, resolveCategories } from './config.js';
import { mastersOf } from './cluster.js';
import { createRedisClient, isCluster, quitOrDisconnect, type RedisClient } from './connection.js';
import { CacheConfigError, UnknownCategoryError } from './errors.js';
import { checkHealth } from './health.js';
import { L1Tier } from './l1.js';
import { L1Sync } from './l1-sync.js';
import { bulkTimeout, bumpGenerations, scanEach, scanUnlink, unlinkTagMembers } from './invalidation.js';
import { statsKey } from './keys.js';
import { KeyLayout } from './layout.js';
import { ErrorReporter, silentLogger } from './reporter.js';
import { RedisRunner } from './runner.js';
import type { CircuitState } from './breaker.js';
import type { LatencySnapshot } from './latency.js';
import { hitRatePercent, StatsRecorder } from './stats.js';
import { parseInfo } from './replies.js';
import type { CacheHealth, CacheOptions, CacheStats, CategoryCache, CategoryCounters, CategoryStats, ResolvedCategory } from './types.js';

export interface CacheOpsFigures<C extends string = string> {
  circuit: CircuitState;
  commandLatency: LatencySnapshot;
  leaseWaits: Record<C, number>;
}

/** Above this many keys in the DB, stats() does not count a service's keys (null) rather than SCAN them all. */
export const KEY_COUNT_LIMIT = 50_000;

/** Reconnect quickly once Redis is back: 100, 200, 400, then every 500 ms. */
function retryStrategy(times: number): number {
  return Math.min(50 * 2 ** Math.min(times, 10), 500);
}

/**
 * Connection settings for a client the cache creates: a cache call must fail fast rather than queue or retry,
 * since a miss is always an acceptable answer. No ioredis `commandTimeout` unless `connection` sets one: every call
 * of the cache is bounded by its runner (commandTimeoutMs, or the longer bound of a batched call), and ioredis's
 * per-command timer would only add a setTimeout, a clearTimeout and a `delete` (which turns each command object
 * into a slow dictionary) to every hit. The L1 subscriber, whose commands bypass the runner, sets its own.
 */
export function cacheConnectionOptions(connection: RedisOptions = {}, _commandTimeoutMs = 250): RedisOptions {
  return {
    connectTimeout: 2000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy,
    ...connection,
  };
}

/**
 * Cluster-level settings for a Cluster client the cache creates, same spirit: no offline queue (a call while the
 * cluster is not ready fails at once, as a miss), short waits before retrying a command during a failover or while
 * the cluster is down, and few redirections, so every call ends within the command timeout. The node connections
 * keep their offline queue: ioredis connects them lazily, on their first command.
 */
export function cacheClusterOptions(commandTimeoutMs = 250): ClusterOptions {
  const bound = Math.max(50, Math.floor(commandTimeoutMs / 5));
  return {
    enableOfflineQueue: false,
    retryDelayOnFailover: bound,
    retryDelayOnClusterDown: bound,
    retryDelayOnTryAgain: bound,
    retryDelayOnMoved: 0,
    maxRedirections: 3,
    slotsRefreshTimeout: Math.max(commandTimeoutMs, 1000),
    clusterRetryStrategy: retryStrategy,
  };
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) throw new CacheConfigError(name, `${name} must be a positive number, got ${String(value)}`);
  return value;
}

/** Redis INFO fields of several masters as one: counters and sizes summed, the rest from the first. */
function sumInfo(infos: Array<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = { ...infos[0] };
  for (const field of ['used_memory', 'maxmemory', 'connected_clients', 'total_commands_processed', 'keyspace_hits', 'keyspace_misses']) {
    const values = infos.map((i) => num(i[field]));
    if (values.every((v) => v !== null)) out[field] = String(values.reduce((a, v) => (a ?? 0) + (v ?? 0), 0));
  }
  if (infos.length > 1 && out.used_memory !== undefined) out.used_memory_human = humanBytes(Number(out.used_memory));
  return out;
}

function humanBytes(n: number): string {
  const units = ['B', 'K', 'M', 'G', 'T'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return i === 0 ? `${n}B` : `${n.toFixed(2)}${units[i]}`;
}

/** Tag sets (one per bucket on a Cluster) emptied at once by a tag invalidation. */
const TAG_SETS_AT_ONCE = 32;

const num = (v: string | undefined): number | null => (v === undefined || v === '' || Number.isNaN(Number(v)) ? null : Number(v));

/**
 * A service's cache: one Redis client, categories with their own TTLs, all keys under `<service>:`.
 * Every call degrades to a miss when Redis fails or is slow; none throws for Redis trouble or hangs.
 */
export class Cache<C extends string = string> {
  readonly service: string;
  readonly db: number;
  /** One server (also through Sentinel) or a Cluster. */
  readonly client: RedisClient;
  /** How this cache names its keys: the one-server layout, or bucketed by hash tag on a Cluster. */
  readonly layout: KeyLayout;
  private readonly owned: boolean;
  private readonly runner: RedisRunner;
  private readonly recorder: StatsRecorder;
  private readonly reporter: ErrorReporter;
  private readonly resolved: ResolvedCategory[];
  private readonly byName = new Map<string, Category>();
  private readonly flushTimer: NodeJS.Timeout;
  private readonly tiers = new Map<string, L1Tier>();
  /** Present when some category has an L1: owns the subscriber connection (closed by close()). */
  private readonly sync: L1Sync | undefined;
  private closed = false;

  constructor(opts: CacheOptions<C>) {
    assertServiceName(opts.service);
    this.service = opts.service;
    this.resolved = resolveCategories(opts.categories as Record<string, CacheOptions['categories'][string]>, opts.env ?? process.env);
    const jitter = opts.jitter ?? 0.05;
    if (!Number.isFinite(jitter) || jitter < 0 || jitter > 0.5) throw new CacheConfigError('jitter', `jitter must be between 0 and 0.5, got ${String(jitter)}`);
    const commandTimeoutMs = positive('commandTimeoutMs', opts.commandTimeoutMs, 250);
    const flushMs = positive('statsFlushIntervalMs', opts.statsFlushIntervalMs, 1000);
    const leaseTtlMs = positive('leaseTtlMs', opts.leaseTtlMs, 10_000);

    this.reporter = new ErrorReporter(opts.logger ?? silentLogger);
    if (opts.client) {
      this.client = opts.client;
      this.owned = false;
    } else {
      this.client = createRedisClient(opts.topology ?? { mode: 'single' }, cacheConnectionOptions(opts.connection, commandTimeoutMs), cacheClusterOptions(commandTimeoutMs));
      this.owned = true;
      this.client.on('error', (err: Error) => this.reporter.report(err, { service: this.service, op: 'connection' }));
      // Each node's connection errors reach the Cluster as 'node error'; without a listener they go unlogged.
      if (isCluster(this.client)) this.client.on('node error', (err: Error) => this.reporter.report(err, { service: this.service, op: 'connection' }));
    }
    // A Cluster has only DB 0.
    this.db = isCluster(this.client) ? 0 : Number((this.client as Redis).options.db ?? 0);
    this.layout = new KeyLayout(this.service, isCluster(this.client));
    this.runner = new RedisRunner(this.client, commandTimeoutMs, opts.breaker);
    for (const def of this.resolved) {
      if (def.l1MaxBytes > 0) this.tiers.set(def.name, new L1Tier(def.l1MaxBytes, (def.l1TtlSeconds ?? DEFAULT_L1_TTL_SECONDS) * 1000));
    }
    this.recorder = new StatsRecorder(
      this.resolved.map((c) => c.name),
      new Set(this.tiers.keys()),
    );
    this.sync =
      this.tiers.size > 0
        ? new L1Sync({ service: this.service, client: this.client, runner: this.runner, reporter: this.reporter, tiers: this.tiers, retryStrategy })
        : undefined;
    const ctx = { service: this.service, layout: this.layout, runner: this.runner, stats: this.recorder, reporter: this.reporter, jitter, leaseTtlMs, sync: this.sync };
    for (const def of this.resolved) {
      this.byName.set(def.name, new Category(ctx, def, this.tiers.get(def.name)));
    }
    this.flushTimer = setInterval(() => void this.flushStats(), flushMs);
    this.flushTimer.unref();
  }

  category(name: C): CategoryCache {
    const cat = this.byName.get(name);
    if (!cat) throw new UnknownCategoryError(name, [...this.byName.keys()]);
    return cat;
  }

  hasCategory(name: string): name is C {
    return this.byName.has(name);
  }

  listCategories(): ResolvedCategory[] {
    return this.resolved.map((c) => ({ ...c }));
  }

  /** Removes every entry written with any of these tags (SSCAN + UNLINK), and the tag sets. Answers entries removed. */
  async invalidateTags(tags: string[]): Promise<number> {
    if (tags.length === 0) return 0;
    if (!(await this.bumpAllGenerations('invalidateTags'))) {
      this.dropLocal();
      return 0;
    }
    let removed = 0;
    // On a Cluster every bucket has its own set of the tag: a few at a time, each SSCANned on its own node.
    const sets = [...new Set(tags)].flatMap((tag) => this.layout.tagKeys(tag));
    for (let i = 0; i < sets.length; i += TAG_SETS_AT_ONCE) {
      const results = await Promise.all(sets.slice(i, i + TAG_SETS_AT_ONCE).map((k) => unlinkTagMembers(this.runner, k)));
      const failed = results.find((r) => r.error !== undefined);
      for (const r of results) removed += r.removed;
      if (failed) {
        this.reporter.report(failed.error, { service: this.service, op: 'invalidateTags' });
        break;
      }
    }
    // Tagged entries may be in any category: every L1 goes, here and (message) on the other replicas.
    await this.afterWideChange();
    return removed;
  }

  /**
   * Removes every key of this service (SCAN `<service>:*` + UNLINK), never FLUSHDB, so other services on the same
   * DB keep theirs. The service-wide stats hash is kept: clearing the cache does not reset its hit/miss history,
   * and it holds the invalidation generations (bumped, so in-flight loaders cannot write back what was cleared).
   * So are the replicas' stats flush markers, without which a retried flush could count twice.
   */
  async clear(): Promise<number> {
    if (!(await this.bumpAllGenerations('clear'))) {
      this.dropLocal();
      return 0;
    }
    const kept = this.layout.keptByClear();
    const { removed, error } = await scanUnlink(this.runner, `${this.service}:*`, { exclude: kept.exact, excludePrefixes: kept.prefixes });
    await this.afterWideChange();
    if (error !== undefined) this.reporter.report(error, { service: this.service, op: 'clear' });
    return removed;
  }

  /** Every L1 entry and every load in flight of this process: a change that may touch any category happened. */
  private dropLocal(): void {
    for (const t of this.tiers.values()) t.evictAll();
    for (const c of this.byName.values()) c.detachLoads();
  }

  /** After a change that may touch every category: this replica's L1s and loads now, the other L1s through a message. */
  private async afterWideChange(): Promise<void> {
    this.dropLocal();
    if (this.sync) await this.sync.publish();
  }

  /** Tags and clears may touch every category: in-flight loaders of all of them must not store what they read. */
  private async bumpAllGenerations(op: string): Promise<boolean> {
    try {
      await bumpGenerations(this.runner, this.layout.genKeys(), [...this.byName.values()].map((c) => c.genField));
      return true;
    } catch (err) {
      this.reporter.report(err, { service: this.service, op });
      return false;
    }
  }

  /** This process since start, per category. Synchronous, for /metrics. */
  counters(): Record<C, CategoryCounters> {
    return this.recorder.counters() as Record<C, CategoryCounters>;
  }

  /**
   * Operating figures of this process, all read from memory (no Redis call), for /metrics: the circuit's state,
   * the client-side duration of the Redis calls that went out, and getOrSet calls that waited on a lease.
   */
  opsFigures(): CacheOpsFigures<C> {
    const leaseWaits = {} as Record<C, number>;
    for (const [name, cat] of this.byName) leaseWaits[name as C] = cat.leaseWaits();
    return { circuit: this.runner.breaker.state, commandLatency: this.runner.latency.snapshot(), leaseWaits };
  }

  /** Adds this process's counts since the last flush to the service-wide totals. Runs on a timer; exposed for shutdown and tests. */
  flushStats(): Promise<void> {
    return this.recorder.flush(this.runner, this.layout);
  }

  async stats(): Promise<CacheStats> {
    await this.flushStats();
    const [hash, perNode] = await Promise.all([
      this.runner.run((c) => c.hgetall(statsKey(this.service))).catch(() => null),
      this.nodeFigures(),
    ]);
    const dbsize = perNode && perNode.every((n) => n.keys !== null) ? perNode.reduce((a, n) => a + (n.keys ?? 0), 0) : null;
    const keyCounts = dbsize !== null && dbsize <= KEY_COUNT_LIMIT ? await this.countKeys() : null;

    const local = this.recorder.counters();
    const categories: Record<string, CategoryStats> = {};
    const sum = { hits: 0, misses: 0, sets: 0, deletes: 0, errors: 0 };
    for (const def of this.resolved) {
      // Without Redis only this process's counts are known.
      const pick = (name: keyof CategoryCounters): number => (hash ? Number(hash[`${def.name}:${name}`] ?? 0) : (local[def.name]?.[name] ?? 0));
      const c = { hits: pick('hits'), misses: pick('misses'), sets: pick('sets'), deletes: pick('deletes'), errors: pick('errors') };
      for (const k of Object.keys(sum) as Array<keyof typeof sum>) sum[k] += c[k];
      categories[def.name] = {
        ...c,
        ...(def.l1MaxBytes > 0 ? { l1_hits: pick('l1_hits') } : {}),
        hit_rate: hitRatePercent(c.hits, c.misses),
        ttl: def.ttl,
        keys: keyCounts ? (keyCounts.get(def.name) ?? 0) : null,
      };
    }

    const info = perNode ? sumInfo(perNode.map((n) => n.info)) : {};
    const kh = num(info.keyspace_hits);
    const km = num(info.keyspace_misses);
    const serverHitRate = kh !== null && km !== null ? hitRatePercent(kh, km) : null;
    const server: CacheStats['server'] = {
      version: info.redis_version ?? null,
      uptime_seconds: num(info.uptime_in_seconds),
      used_memory: num(info.used_memory),
      used_memory_human: info.used_memory_human ?? null,
      maxmemory: num(info.maxmemory),
      maxmemory_policy: info.maxmemory_policy ?? null,
      connected_clients: num(info.connected_clients),
      total_commands_processed: num(info.total_commands_processed),
      keyspace_hits: kh,
      keyspace_misses: km,
      hit_rate: serverHitRate,
    };
    const cluster = isCluster(this.client);
    return {
      service: this.service,
      db: this.db,
      connected: perNode !== null,
      memory_used: server.used_memory_human,
      keyspace_hits: kh,
      keyspace_misses: km,
      hit_rate: serverHitRate,
      total_commands_processed: server.total_commands_processed,
      connected_clients: server.connected_clients,
      scope: {
        service: `service_stats: counted by the cache library for service "${this.service}" (DB ${this.db}), summed over every replica`,
        server: cluster
          ? `memory_used, keyspace_hits, keyspace_misses, hit_rate, total_commands_processed, connected_clients and server.*: Redis INFO summed over the ${perNode?.length ?? 0} masters of the Cluster (version, uptime and policy: the first master's); per master in nodes`
          : 'memory_used, keyspace_hits, keyspace_misses, hit_rate, total_commands_processed, connected_clients and server.*: Redis INFO for the whole server (all DBs, all clients)',
      },
      service_stats: { ...sum, hit_rate: hitRatePercent(sum.hits, sum.misses), categories },
      server,
      ...(cluster && perNode
        ? {
            nodes: perNode.map((n) => ({
              address: n.address,
              keys: n.keys,
              used_memory: num(n.info.used_memory),
              keyspace_hits: num(n.info.keyspace_hits),
              keyspace_misses: num(n.info.keyspace_misses),
              connected_clients: num(n.info.connected_clients),
              total_commands_processed: num(n.info.total_commands_processed),
            })),
          }
        : {}),
    };
  }

  health(): Promise<CacheHealth> {
    return checkHealth(this.runner);
  }

  /**
   * Flushes counters, waits (briefly) for background refreshes, closes the L1 subscriber (always the cache's own),
   * and quits the client only if the cache created it.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.flushTimer);
    await this.sync?.close();
    const pending = [...this.byName.values()].flatMap((c) => c.pending());
    await Promise.race([Promise.allSettled(pending), new Promise((r) => setTimeout(r, 2000).unref())]);
    await this.flushStats();
    this.runner.detach();
    if (!this.owned || this.client.status === 'end') return;
    const ended = new Promise((r) => this.client.once('end', r));
    await quitOrDisconnect(this.client, 1000);
    await Promise.race([ended, new Promise((r) => setTimeout(r, 1000).unref())]);
  }

  /** One SCAN pass over `<service>:*` (on every master of a Cluster), bucketed by category. */
  private async countKeys(): Promise<Map<string, number> | null> {
    const counts = new Map<string, number>();
    const skip = this.service.length + 1;
    try {
      await scanEach(this.runner, `${this.service}:*`, (keys) => {
        for (const k of keys) {
          const end = k.indexOf(':', skip);
          if (end < 0) continue;
          const cat = k.slice(skip, end);
          if (this.byName.has(cat)) counts.set(cat, (counts.get(cat) ?? 0) + 1);
        }
      });
      return counts;
    } catch {
      return null;
    }
  }

  /** INFO and DBSIZE of the server, or of every master of a Cluster; null when Redis did not answer. */
  private async nodeFigures(): Promise<Array<{ address: string; info: Record<string, string>; keys: number | null }> | null> {
    const client = this.client;
    try {
      const nodes: Array<{ address: string; node: RedisClient }> = isCluster(client)
        ? mastersOf(client).map((n) => ({ address: `${n.options.host ?? ''}:${String(n.options.port ?? '')}`, node: n }))
        : [{ address: `${client.options.host ?? ''}:${String(client.options.port ?? '')}`, node: client }];
      return await Promise.all(
        nodes.map(async ({ address, node }) => {
          const [infoText, keys] = await Promise.all([
            this.runner.run(() => node.info(), bulkTimeout(this.runner)),
            this.runner.run(() => (node as Redis).dbsize(), bulkTimeout(this.runner)).catch(() => null),
          ]);
          return { address, info: parseInfo(String(infoText)), keys };
        }),
      );
    } catch {
      return null;
    }
  }
}
