import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { ModelRegistry } from '../providers/registry.js';
import type { EmbeddingProvider, ModelMetadata } from '../providers/types.js';
import { ModelNotFound } from '../errors.js';
import { ErrorResponse, ModelListSchema, ModelMetadataSchema } from '../schemas.js';

export interface ModelsRoutesOptions {
  registry: ModelRegistry;
}

export const modelsRoutes: FastifyPluginAsync<ModelsRoutesOptions> = async (scope, opts) => {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  const metadata = app.cache.category('model_metadata');

  async function describe(p: EmbeddingProvider): Promise<ModelMetadata> {
    try {
      return await metadata.getOrSet<ModelMetadata>(p.id, async () => (p.loadMetadata ? p.loadMetadata() : p.describe()));
    } catch (err) {
      // Backend could not tell its dimensions yet: answer from configuration, uncached.
      app.log.warn({ model: p.id, err: (err as Error).message }, 'model metadata from configuration only');
      return p.describe();
    }
  }

  app.get(
    '/api/v1/models',
    {
      schema: {
        tags: ['models'],
        summary: 'Embedding models this worker serves',
        response: { 200: ModelListSchema },
      },
    },
    async () => ({ object: 'list' as const, data: await Promise.all(opts.registry.all().map(describe)) }),
  );

  // A wildcard, not :id, because model ids often contain slashes (BAAI/bge-small-en-v1.5).
  // Fastify's own validator here: TypeBox's converter cannot handle the '*' property name.
  app.get(
    '/api/v1/models/*',
    {
      schema: {
        tags: ['models'],
        summary: 'One embedding model',
        params: Type.Object({ '*': Type.String({ minLength: 1, maxLength: 200, description: 'Model id' }) }),
        response: { 200: ModelMetadataSchema, 400: ErrorResponse, 404: ErrorResponse },
      },
    },
    async (request) => {
      const id = request.params['*'];
      const p = opts.registry.find(id);
      if (!p) throw new ModelNotFound(id);
      return describe(p);
    },
  );
};
