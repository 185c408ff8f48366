import fp from 'fastify-plugin';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { Type } from 'typebox';
import type { FastifyInstance } from 'fastify';
import { admitUnderPressure } from './pressure.js';

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

/** What the metrics need from `app.cache` (decorated by @aicache/cache's plugin); duck-typed to keep the kit independent. */
interface CounterSource {
  service?: string;
  counters(): Record<string, { hits: number; misses: number; sets: number; deletes?: number; errors: number; l1_hits?: number }>;
}

async function metrics(app: FastifyInstance, opts: MetricsOptions): Promise<void> {
  // One registry per app, not prom-client's global one, so tests can build many apps in one process.
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry });

  const httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration in seconds',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });

  const cacheSource = (): CounterSource | undefined => {
    if (!app.hasDecorator('cache')) return undefined;
    const cache = (app as unknown as { cache?: CounterSource }).cache;
    return cache && typeof cache.counters === 'function' ? cache : undefined;
  };

  const cacheCounter = (name: string, help: string, field: 'hits' | 'misses' | 'sets' | 'deletes' | 'errors' | 'l1_hits') =>
    new Counter({
      name,
      help,
      labelNames: ['service', 'category'] as const,
      registers: [registry],
      collect() {
        this.reset();
        const cache = cacheSource();
        if (!cache) return;
        let counters: ReturnType<CounterSource['counters']>;
        try {
          counters = cache.counters();
        } catch {
          return;
        }
        const service = cache.service ?? opts.name;
        for (const [category, c] of Object.entries(counters)) this.inc({ service, category }, c[field] ?? 0);
      },
    });
  cacheCounter('cache_hits_total', 'Cache hits by category (this process since start)', 'hits');
  cacheCounter('cache_misses_total', 'Cache misses by category (this process since start)', 'misses');
  cacheCounter('cache_sets_total', 'Cache writes by category (this process since start)', 'sets');
  cacheCounter('cache_deletes_total', 'Cache deletes by category (this process since start)', 'deletes');
  cacheCounter('cache_l1_hits_total', 'Cache hits served by the in-process tier (also counted in cache_hits_total)', 'l1_hits');
  cacheCounter('cache_errors_total', 'Cache operations that failed and degraded to a miss, by category', 'errors');

  app.decorate('metrics', { registry });

  app.addHook('onResponse', async (request, reply) => {
    // The route pattern, never the raw URL, keeps label cardinality bounded.
    const route = request.routeOptions.url ?? 'unmatched';
    httpDuration.observe({ method: request.method, route, status_code: String(reply.statusCode) }, reply.elapsedTime / 1000);
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
