import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { within } from '@aicache/auth';
import { errorResponses, StateUnavailable } from '@aicache/service-kit';
import type { StatsHistory } from '../domain/housekeeping.js';

const Snapshot = Type.Object({
  id: Type.String({ description: 'The stream entry id (milliseconds-sequence)' }),
  at: Type.String({ format: 'date-time' }),
  cacheConnected: Type.Boolean({ description: 'False: the cache Redis did not answer, the counts are the snapshotting process\'s own' }),
  hits: Type.Integer(),
  misses: Type.Integer(),
  hitRate: Type.Number({ description: 'Percent' }),
  sets: Type.Integer(),
  errors: Type.Integer(),
  categories: Type.Record(
    Type.String(),
    Type.Object({ hits: Type.Integer(), misses: Type.Integer(), hit_rate: Type.Number(), keys: Type.Union([Type.Integer(), Type.Null()]) }),
  ),
  documents: Type.Union([Type.Integer(), Type.Null()], { description: 'Documents of every tenant; null when the index did not answer' }),
  chunks: Type.Union([Type.Integer(), Type.Null()]),
});

/** GET /api/v1/cache/stats/history: the snapshots the stats-snapshot job appends, for admins. */
export async function statsHistoryRoutes(scope: FastifyInstance, opts: { history: StatsHistory; timeoutMs: number; everyMs: number }): Promise<void> {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  app.get(
    '/api/v1/cache/stats/history',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['cache'],
        summary: 'Cache statistics and corpus size over time',
        description:
          `Snapshots taken by the scheduled stats-snapshot job (every ${opts.everyMs > 0 ? `${opts.everyMs} ms` : '— off: JOBS_STATS_SNAPSHOT_INTERVAL_MS=0'}, once across all ` +
          'replicas): the cache counters of this service summed over every replica (cumulative since the counters were last reset), ' +
          'per category, and the documents and chunks of every tenant. Newest first; the oldest are trimmed past JOBS_STATS_SNAPSHOT_KEEP.',
        querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })) }, { additionalProperties: false }),
        response: { 200: Type.Object({ snapshots: Type.Array(Snapshot) }), ...errorResponses(400, 503) },
      },
    },
    async (request) => {
      try {
        return { snapshots: await within(opts.history.read(request.query.limit ?? 100), opts.timeoutMs) };
      } catch (err) {
        throw new StateUnavailable('stats history', `the state Redis did not answer: ${(err as Error).message}`);
      }
    },
  );
}
