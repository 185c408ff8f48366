import type { FastifyInstance } from 'fastify';
import { errorResponses } from '@aicache/service-kit';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { removedOrUnavailable } from '@aicache/cache/fastify';
import { searchPatternGlob } from '../domain/cache-keys.js';

const PatternParams = Type.Object(
  {
    pattern: Type.String({
      minLength: 1,
      maxLength: 200,
      pattern: '^[A-Za-z0-9*?_-]{1,200}$',
      description: 'Glob over the query slug: letters, digits, -, _, * and ? only (no ":")',
    }),
  },
  { additionalProperties: false },
);

const RemovedResponse = Type.Object({
  pattern: Type.String(),
  removed: Type.Integer({ description: 'search_results entries removed' }),
});

/**
 * Registered through the cache plugin's `adminRoutes` option: it lives under /api/v1/cache, behind the
 * admin bearer token and the admin rate limit.
 */
export async function cacheAdminRoutes(scope: FastifyInstance): Promise<void> {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();

  app.delete(
    '/search/:pattern',
    {
      schema: {
        tags: ['cache'],
        summary: 'Invalidate cached search results by query text',
        description:
          'Requires `Authorization: Bearer <CACHE_ADMIN_TOKEN>`. Search entries are keyed ' +
          '`q:<tenant>:<slug>:v<corpusVersion>.<corpusEpoch>:<hash>`, where the slug is the normalized query (lower-cased, every ' +
          'run of characters other than a-z and 0-9 replaced by "-", at most 80 chars). The pattern is a glob matched against ' +
          'the WHOLE slug (`*` any run, `?` one character), for every tenant and every corpus version: `refund` removes only ' +
          'the query "refund", `*refund*` every query containing "refund", ' +
          '`refund-*` those starting with "refund ". The pattern is lower-cased and "_" is read as "-" like the slug; ' +
          'send `?` percent-encoded (%3F). ' +
          'Only search_results entries are removed (context bundles are not).',
        params: PatternParams,
        response: { 200: RemovedResponse, ...errorResponses(400, 401, 429, 503) },
      },
    },
    async (request) => {
      const { pattern } = request.params;
      const removed = await scope.cache.category('search_results').invalidatePattern(searchPatternGlob(pattern));
      return { pattern, ...(await removedOrUnavailable(scope.cache, removed)) };
    },
  );
}
