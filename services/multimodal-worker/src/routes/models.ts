import { errors } from '@aicache/service-kit';
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { ModelRegistry } from '../providers/registry.js';
import type { EmbeddingProvider, ModelMetadata } from '../providers/types.js';
import { aboutParam, ModelNotFound } from '../errors.js';
import { ModelListSchema, ModelMetadataSchema } from '../schemas.js';
import { openAIErrorResponses, useOpenAIErrors } from './openai-errors.js';

export interface ModelsRoutesOptions {
  registry: ModelRegistry;
}

const MAX_MODEL_ID = 200;
const segment = (description: string) => Type.String({ minLength: 1, maxLength: MAX_MODEL_ID, description });

export const modelsRoutes: FastifyPluginAsync<ModelsRoutesOptions> = async (scope, opts) => {
  useOpenAIErrors(scope);
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  const metadata = app.cache.category('model_metadata');

  async function describe(p: EmbeddingProvider): Promise<ModelMetadata> {
    try {
      const cached = await metadata.getOrSet<ModelMetadata>(p.id, async () => (p.loadMetadata ? p.loadMetadata() : p.describe()));
      // Entries cached by an older version may lack fields added since (created, owned_by).
      return { ...p.describe(), ...cached };
    } catch (err) {
      // Backend could not tell its dimensions yet: answer from configuration, uncached.
      app.log.warn({ model: p.id, err: (err as Error).message }, 'model metadata from configuration only');
      return p.describe();
    }
  }

  async function one(id: string): Promise<ModelMetadata> {
    const p = opts.registry.find(id);
    if (!p) throw new ModelNotFound(id.slice(0, MAX_MODEL_ID));
    return describe(p);
  }

  const responses = { 200: ModelMetadataSchema, ...openAIErrorResponses(400, 401, 403, 404, 429, 503) };

  app.get(
    '/api/v1/models',
    {
      schema: {
        tags: ['models'],
        summary: 'Embedding models this worker serves',
        response: { 200: ModelListSchema, ...openAIErrorResponses(401, 403, 429, 503) },
      },
    },
    async () => ({ object: 'list' as const, data: await Promise.all(opts.registry.all().map(describe)) }),
  );

  app.get(
    '/api/v1/models/:id',
    {
      schema: {
        tags: ['models'],
        summary: 'One embedding model',
        description: 'A model id with a slash (BAAI/bge-small-en-v1.5) goes here percent-encoded (BAAI%2Fbge-small-en-v1.5), as OpenAI clients send it, or to /api/v1/models/{owner}/{name}.',
        params: Type.Object({ id: segment('Model id') }),
        response: responses,
      },
    },
    async (request) => one(request.params.id),
  );

  app.get(
    '/api/v1/models/:owner/:name',
    {
      schema: {
        tags: ['models'],
        summary: 'One embedding model whose id has a slash',
        description: 'GET /api/v1/models/BAAI/bge-small-en-v1.5 answers the model `BAAI/bge-small-en-v1.5`.',
        params: Type.Object({ owner: segment('Model id up to its slash'), name: segment('Model id after its slash') }),
        response: responses,
      },
    },
    async (request) => one(`${request.params.owner}/${request.params.name}`),
  );

  // Ids with more than one slash, and path segments over Fastify's maxParamLength (100), which the
  // routes above do not match. Hidden: a wildcard parameter is no use to generated clients (openapi-fetch
  // would call /api/v1/models/%7B*%7D), and the two routes above document every id.
  app.get('/api/v1/models/*', { schema: { hide: true, response: responses } }, async (request) => {
    const id = (request.params as { '*': string })['*'];
    if (id.length > MAX_MODEL_ID) throw aboutParam(new errors.BadRequest(`params/id must NOT have more than ${MAX_MODEL_ID} characters`), 'id');
    return one(id);
  });
};
