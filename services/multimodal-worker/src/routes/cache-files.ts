import type { FastifyPluginAsync } from 'fastify';
import { errorResponses } from '@aicache/service-kit';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { removedOrUnavailable } from '@aicache/cache/fastify';
import { fileTag } from '../domain/file-processor.js';

/**
 * DELETE /api/v1/cache/file/:fileHash — registered through the cache plugin's `adminRoutes`, so it
 * sits under /api/v1/cache behind the admin bearer token.
 */
export const cacheFileRoutes: FastifyPluginAsync = async (scope) => {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();

  app.delete(
    '/file/:fileHash',
    {
      schema: {
        tags: ['cache'],
        summary: 'Forget a processed file',
        description:
          'Removes every cached result of this file (all chunk sizes and models) and the chunk embeddings written for it. ' +
          'Requires `Authorization: Bearer <CACHE_ADMIN_TOKEN>`.',
        params: Type.Object({ fileHash: Type.String({ pattern: '^[0-9a-fA-F]{64}$', description: 'sha256 of the text, 64 hex characters' }) }),
        response: {
          200: Type.Object({ fileHash: Type.String(), removed: Type.Integer() }),
          ...errorResponses(400, 401, 429, 503),
        },
      },
    },
    async (request) => {
      const fileHash = request.params.fileHash.toLowerCase();
      const byTag = await app.cache.invalidateTags([fileTag(fileHash)]);
      // Belt and braces: results whose tag index was lost still share the key prefix.
      const byKey = await app.cache.category('files').invalidatePattern(`${fileHash}:*`);
      return { fileHash, ...(await removedOrUnavailable(app.cache, byTag + byKey)) };
    },
  );
};
