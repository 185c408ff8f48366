import fp from 'fastify-plugin';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import { Type } from 'typebox';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { admitUnderPressure } from './pressure.js';
import { durabilitySampler, redisFiguresSampler, type RedisFigures } from './redis-figures.js';

declare module 'fastify' {
  interface FastifyInstance {
    metrics: { registry: Registry };
  }
}

export interface MetricsOptions {
  name: string;
  /** Default true; off for apps that should not sample the event loop. */
  defaultMetrics?: boolean;
}

type CounterField = 'hits' | 'misses' | 'sets' | 'deletes' | 'errors' | 'l1_hits';

/** What the metrics need from `app.cache` (decorated by @aicache/cache's plugin); duck-typed to keep the kit independent. */
interface CacheSource {
  service?: string;
  client?: Redis;
  counters(): Record<string, Partial<Record<CounterField, number>> & { hits: number; misses: number }>;
  /** Newer cache versions: circuit, command latency, lease waits. */
  opsFigures?(): {
    circuit: 'closed' | 'half-open' | 'open';
    commandLatency: { buckets: readonly number[]; counts: number[]; count: number; sumSeconds: number };
    leaseWaits: Record<string, number>;
  };
  listCategories?(): Array<{ name: string; l1MaxBytes?: number }>;
  category?(name: string): { l1Info?(): { entries: number; bytes: number; maxBytes: number } };
}

/** cache_circuit_breaker_state: 0 closed, 1 half-open (open, its cooldown over, the next call probes), 2 open. */
export const CIRCUIT_STATE_VALUE = { closed: 0, 'half-open': 1, open: 2 } as const;

async function metrics(app: FastifyInstance, opts: MetricsOptions): Promise<void> {
  // One registry per app, not prom-client's global one, so tests can build many apps in one process.
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration in seconds',
    labelNames: ['service', 'method', 'route', 'status_code'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });

  const cacheSource = (): CacheSource | undefined => {
    if (!app.hasDecorator('cache')) return undefined;
    const cache = (app as unknown as { cache?: CacheSource }).cache;
    return cache && typeof cache.counters === 'function' ? cache : undefined;
  };
  const serviceOf = (cache: CacheSource): string => cache.service ?? opts.name;
  /** Runs `fill` with the cache when there is one; a throwing source leaves the metric empty rather than failing the scrape. */
  const withCache = (fill: (cache: CacheSource, service: string) => void): void => {
    const cache = cacheSource();
    if (!cache) return;
    try {
      fill(cache, serviceOf(cache));
    } catch {
      // Figures of a closing cache: leave this metric out of the scrape.
    }
  };

  const counters = (cache: CacheSource) => cache.counters();
  const cacheCounter = (name: string, help: string, field: CounterField) =>
    new Counter({
      name,
      help,
      labelNames: ['service', 'category'] as const,
      registers,
      collect() {
        this.reset();
        withCache((cache, service) => {
          for (const [category, c] of Object.entries(counters(cache))) this.inc({ service, category }, c[field] ?? 0);
        });
      },
    });
  cacheCounter('cache_hits_total', 'Cache hits by category (this process since start)', 'hits');
  cacheCounter('cache_misses_total', 'Cache misses by category (this process since start)', 'misses');
  cacheCounter('cache_sets_total', 'Cache writes by category (this process since start)', 'sets');
  cacheCounter('cache_deletes_total', 'Cache deletes by category (this process since start)', 'deletes');
  cacheCounter('cache_l1_hits_total', 'Cache hits served by the in-process tier (also counted in cache_hits_total)', 'l1_hits');
  cacheCounter('cache_errors_total', 'Cache operations that failed and degraded to a miss, by category', 'errors');

  new Gauge({
    name: 'cache_hit_rate_percent',
    help: 'Hits / (hits + misses) in percent, by category, this process since start; absent before the first lookup (rules should use rate() of the counters)',
    labelNames: ['service', 'category'] as const,
    registers,
    collect() {
      this.reset();
      withCache((cache, service) => {
        for (const [category, c] of Object.entries(counters(cache))) {
          const total = c.hits + c.misses;
          if (total > 0) this.set({ service, category }, Math.round((c.hits / total) * 1000) / 10);
        }
      });
    },
  });

  new Gauge({
    name: 'cache_circuit_breaker_state',
    help: 'Circuit breaker of the cache Redis: 0 closed, 1 half-open (cooldown over, next call probes), 2 open (calls refused, answered as misses)',
    labelNames: ['service'] as const,
    registers,
    collect() {
      this.reset();
      withCache((cache, service) => {
        const figures = cache.opsFigures?.();
        if (figures) this.set({ service }, CIRCUIT_STATE_VALUE[figures.circuit]);
      });
    },
  });

  new Counter({
    name: 'cache_lease_waits_total',
    help: 'getOrSet calls that waited for another holder of the key lease (cross-replica stampede protection), by category',
    labelNames: ['service', 'category'] as const,
    registers,
    collect() {
      this.reset();
      withCache((cache, service) => {
        for (const [category, n] of Object.entries(cache.opsFigures?.().leaseWaits ?? {})) this.inc({ service, category }, n);
      });
    },
  });

  const l1Gauge = (name: string, help: string, field: 'entries' | 'bytes' | 'maxBytes') =>
    new Gauge({
      name,
      help,
      labelNames: ['service', 'category'] as const,
      registers,
      collect() {
        this.reset();
        withCache((cache, service) => {
          for (const def of cache.listCategories?.() ?? []) {
            if (!def.l1MaxBytes) continue;
            const info = cache.category?.(def.name).l1Info?.();
            if (info) this.set({ service, category: def.name }, info[field]);
          }
        });
      },
    });
  l1Gauge('cache_l1_entries', 'Entries in the in-process tier, by category (categories with an L1 only)', 'entries');
  l1Gauge('cache_l1_bytes', 'Size of the in-process tier (encoded values + keys), by category', 'bytes');
  l1Gauge('cache_l1_max_bytes', 'Bound of the in-process tier (CACHE_L1_MAX_BYTES_<CATEGORY>), by category', 'maxBytes');

  // Built from the cache's own fixed buckets (filled on the Redis call path for next to nothing), not a prom-client
  // Histogram, whose observe() would add label hashing to every cache call.
  const latencyName = 'cache_redis_command_duration_seconds';
  const latencyMetric = {
    name: latencyName,
    help: 'Client-side duration of the cache Redis calls (sent to answered or timed out), this process since start',
    type: 'histogram',
    aggregator: 'sum',
    reset(): void {},
    get() {
      const values: Array<{ metricName: string; labels: Record<string, string | number>; value: number }> = [];
      withCache((cache, service) => {
        const h = cache.opsFigures?.().commandLatency;
        if (!h) return;
        let cumulative = 0;
        h.buckets.forEach((le, i) => {
          cumulative += h.counts[i] ?? 0;
          values.push({ metricName: `${latencyName}_bucket`, labels: { service, le }, value: cumulative });
        });
        values.push({ metricName: `${latencyName}_bucket`, labels: { service, le: '+Inf' }, value: h.count });
        values.push({ metricName: `${latencyName}_sum`, labels: { service }, value: h.sumSeconds });
        values.push({ metricName: `${latencyName}_count`, labels: { service }, value: h.count });
      });
      return { name: latencyName, help: this.help, type: 'histogram', values, aggregator: 'sum' };
    },
  };
  registry.registerMetric(latencyMetric as unknown as Metric);

  // Server figures of the cache and state Redis, from INFO at scrape time: sampled at most every few seconds, each
  // sample bounded, and absent (never NaN) while a connection is down. `redis_up` says which.
  const samplers = { cache: redisFiguresSampler(), state: redisFiguresSampler() };
  const durability = durabilitySampler();
  const connection = (which: 'cache' | 'state'): Redis | undefined => {
    if (which === 'cache') return cacheSource()?.client;
    return app.hasDecorator('redis') ? (app as unknown as { redis?: { state?: Redis } }).redis?.state : undefined;
  };
  let snapshot: Promise<Array<{ redis: 'cache' | 'state'; figures: RedisFigures | null }>> | undefined;
  /** One sampling per scrape, shared by the gauges below (each collect() is called once per scrape). */
  const sampleAll = () => {
    snapshot ??= Promise.all(
      (['cache', 'state'] as const).flatMap((redis) => {
        const client = connection(redis);
        return client ? [samplers[redis].sample(client).then((figures) => ({ redis, figures }))] : [];
      }),
    ).finally(() => setImmediate(() => (snapshot = undefined)));
    return snapshot;
  };
  const redisGauge = (name: string, help: string, pick: (f: RedisFigures) => number | null) =>
    new Gauge({
      name,
      help,
      labelNames: ['service', 'redis'] as const,
      registers,
      async collect() {
        this.reset();
        for (const { redis, figures } of await sampleAll()) {
          const v = figures ? pick(figures) : null;
          if (v !== null) this.set({ service: opts.name, redis }, v);
        }
      },
    });
  new Gauge({
    name: 'redis_up',
    help: 'The Redis connection answered INFO at the last sample (1) or not (0); redis="cache" or "state"',
    labelNames: ['service', 'redis'] as const,
    registers,
    async collect() {
      this.reset();
      for (const { redis, figures } of await sampleAll()) this.set({ service: opts.name, redis }, figures ? 1 : 0);
    },
  });
  redisGauge('redis_memory_used_bytes', 'Redis used_memory (whole server) from INFO', (f) => f.usedMemoryBytes);
  redisGauge('redis_memory_max_bytes', 'Redis maxmemory from INFO (0 = no limit)', (f) => f.maxMemoryBytes);
  redisGauge('redis_connected_clients', 'Redis connected_clients (whole server) from INFO', (f) => f.connectedClients);
  new Counter({
    name: 'redis_evicted_keys_total',
    help: 'Redis evicted_keys (whole server, since its start) from INFO',
    labelNames: ['service', 'redis'] as const,
    registers,
    async collect() {
      this.reset();
      for (const { redis, figures } of await sampleAll()) {
        if (figures?.evictedKeys != null) this.inc({ service: opts.name, redis }, figures.evictedKeys);
      }
    },
  });
  new Gauge({
    name: 'state_redis_durable',
    help: 'The state Redis keeps state: 1 = maxmemory-policy noeviction and AOF or RDB on, 0 = it may evict or lose state on restart; absent while it does not answer',
    labelNames: ['service'] as const,
    registers,
    async collect() {
      this.reset();
      const client = connection('state');
      if (!client) return;
      const d = await durability.sample(client);
      if (d) this.set({ service: opts.name }, d.durable ? 1 : 0);
    },
  });

  app.decorate('metrics', { registry });

  app.addHook('onResponse', async (request, reply) => {
    // The route pattern, never the raw URL, keeps label cardinality bounded.
    const route = request.routeOptions.url ?? 'unmatched';
    httpDuration.observe({ service: opts.name, method: request.method, route, status_code: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });

  app.get(
    '/metrics',
    {
      logLevel: 'warn',
      config: { rateLimit: false, pressureHandler: admitUnderPressure },
      schema: { tags: ['ops'], summary: 'Prometheus metrics', response: { 200: Type.String() } },
    },
    async (_request, reply) => {
      const body = await registry.metrics();
      return reply.type(registry.contentType).send(body);
    },
  );
}

export const metricsPlugin = fp(metrics, { name: '@aicache/service-kit/metrics', fastify: '5.x' });
