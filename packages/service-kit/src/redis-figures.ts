import { parseInfo } from '@aicache/cache';
import type { Redis } from 'ioredis';
import { checkStateDurability } from './state-redis.js';

/** What /metrics shows of one Redis connection's server, read from INFO. */
export interface RedisFigures {
  usedMemoryBytes: number | null;
  maxMemoryBytes: number | null;
  connectedClients: number | null;
  evictedKeys: number | null;
}

/** How long a sample is reused: scrapes, however frequent, send at most one INFO per connection per this many ms. */
export const REDIS_SAMPLE_TTL_MS = 5000;
/** A sample that takes longer is given up (the figures are then absent for this scrape). */
export const REDIS_SAMPLE_TIMEOUT_MS = 250;
/** The state Redis's durability changes only when an operator reconfigures it: sampled less often. */
export const DURABILITY_SAMPLE_TTL_MS = 15_000;

const num = (v: string | undefined): number | null => {
  if (v === undefined || v === '') return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
};

function bounded<T>(work: Promise<T>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), ms);
    timer.unref();
  });
  return Promise.race([work.catch(() => null), timeout]).finally(() => clearTimeout(timer));
}

/**
 * A value read from Redis at scrape time, at most once per `ttlMs`, each read bounded by `timeoutMs`; a connection
 * that is not ready gives null at once (no command queued behind a reconnect). Concurrent scrapes share one read.
 */
export class Sampler<T> {
  private value: T | null = null;
  private readAt = -Infinity;
  private inflight: Promise<T | null> | undefined;

  constructor(
    private readonly read: (client: Redis) => Promise<T>,
    private readonly ttlMs: number,
    private readonly timeoutMs = REDIS_SAMPLE_TIMEOUT_MS,
  ) {}

  private readonly watched = new WeakSet<Redis>();
  private readonly forget = (): void => {
    this.value = null;
    this.readAt = -Infinity;
  };

  sample(client: Redis): Promise<T | null> {
    if (!this.watched.has(client)) {
      // A connection lost drops the sample at once: a scrape right after must not show the server as up.
      client.on('close', this.forget);
      this.watched.add(client);
    }
    if (client.status !== 'ready') {
      this.forget();
      return Promise.resolve(null);
    }
    if (performance.now() - this.readAt < this.ttlMs) return Promise.resolve(this.value);
    this.inflight ??= bounded(this.read(client), this.timeoutMs).then((v) => {
      this.value = v;
      this.readAt = performance.now();
      this.inflight = undefined;
      return v;
    });
    return this.inflight;
  }
}

export function redisFiguresSampler(ttlMs = REDIS_SAMPLE_TTL_MS): Sampler<RedisFigures> {
  return new Sampler(async (client) => {
    // One INFO (default sections: server, clients, memory, stats...) rather than one call per section.
    const info = parseInfo(String(await client.info()));
    return {
      usedMemoryBytes: num(info.used_memory),
      maxMemoryBytes: num(info.maxmemory),
      connectedClients: num(info.connected_clients),
      evictedKeys: num(info.evicted_keys),
    };
  }, ttlMs);
}

/** 1 when the state Redis keeps state (noeviction and AOF or RDB on), 0 when it may lose it; null when unknown. */
export function durabilitySampler(ttlMs = DURABILITY_SAMPLE_TTL_MS): Sampler<{ durable: boolean; evicting: boolean; persistent: boolean }> {
  return new Sampler(async (client) => {
    const d = await checkStateDurability(client);
    return { durable: !d.evicting && d.persistent, evicting: d.evicting, persistent: d.persistent };
  }, ttlMs);
}
