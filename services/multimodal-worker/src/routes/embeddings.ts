import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { withCacheHeader } from '@aicache/service-kit';
import type { EmbeddingService } from '../domain/embedding-service.js';
import { roughTokenCount } from '../domain/hash.js';
import type { ModelRegistry } from '../providers/registry.js';
import { InvalidInput } from '../errors.js';
import { ErrorResponse, MAX_INPUTS, MAX_INPUT_CHARS, ModelId } from '../schemas.js';

export interface EmbeddingsRoutesOptions {
  registry: ModelRegistry;
  embeddings: EmbeddingService;
  bodyLimit: number;
}

const Input = Type.String({ minLength: 1, maxLength: MAX_INPUT_CHARS });

const EmbeddingsBody = Type.Object(
  {
    model: Type.Optional(ModelId),
    input: Type.Union([Input, Type.Array(Input, { minItems: 1, maxItems: MAX_INPUTS })], {
      description: `A non-empty string or an array of 1..${MAX_INPUTS} non-empty strings, each at most ${MAX_INPUT_CHARS} characters`,
    }),
    encoding_format: Type.Optional(Type.Union([Type.Literal('float'), Type.Literal('base64')], { description: 'base64: float32 little-endian bytes' })),
    dimensions: Type.Optional(Type.Integer({ minimum: 1, maximum: 65_536, description: 'Accepted when it equals the model\'s; models here do not shorten vectors' })),
    user: Type.Optional(Type.String({ maxLength: 256, description: 'Accepted for OpenAI compatibility; ignored' })),
  },
  { additionalProperties: false },
);

const EmbeddingsResponse = Type.Object({
  object: Type.Literal('list'),
  data: Type.Array(
    Type.Object({
      object: Type.Literal('embedding'),
      index: Type.Integer(),
      embedding: Type.Union([Type.Array(Type.Number()), Type.String()]),
    }),
  ),
  model: Type.String(),
  usage: Type.Object({ prompt_tokens: Type.Integer(), total_tokens: Type.Integer() }),
});

function base64(v: Float32Array): string {
  // Float32Array uses the platform's byte order, little-endian on every platform Node supports in practice.
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
}

export const embeddingsRoutes: FastifyPluginAsync<EmbeddingsRoutesOptions> = async (scope, opts) => {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();

  app.post(
    '/api/v1/embeddings',
    {
      bodyLimit: opts.bodyLimit,
      schema: {
        tags: ['embeddings'],
        summary: 'Create embeddings (OpenAI-compatible)',
        description:
          'Each distinct input is cached on its own (`<model>:<sha256(input)>`); only misses reach the model. ' +
          'Header `x-cache`: hit (all inputs cached), partial, or miss (none). usage counts are rough (words and punctuation).',
        body: EmbeddingsBody,
        response: { 200: withCacheHeader(EmbeddingsResponse, ['hit', 'partial', 'miss']), 400: ErrorResponse, 413: ErrorResponse, 502: ErrorResponse, 503: ErrorResponse },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const inputs = typeof body.input === 'string' ? [body.input] : body.input;
      const provider = opts.registry.resolve(body.model);
      const limit = provider.describe().max_input_chars;
      const tooLong = inputs.findIndex((t) => t.length > limit);
      if (tooLong >= 0) {
        throw new InvalidInput(`input[${tooLong}] has ${inputs[tooLong]!.length} characters; model '${provider.id}' accepts at most ${limit}`);
      }
      if (body.dimensions !== undefined && provider.dimensions && body.dimensions !== provider.dimensions) {
        throw new InvalidInput(`model '${provider.id}' has ${provider.dimensions} dimensions; dimensions=${body.dimensions} is not supported`);
      }

      const result = await opts.embeddings.embed(inputs, { model: provider.id });
      const tokens = inputs.reduce((n, t) => n + roughTokenCount(t), 0);
      const asBase64 = body.encoding_format === 'base64';
      reply.header('x-cache', result.cache);
      return {
        object: 'list' as const,
        data: result.vectors.map((v, index) => ({
          object: 'embedding' as const,
          index,
          embedding: asBase64 ? base64(v) : Array.from(v),
        })),
        model: result.model,
        usage: { prompt_tokens: tokens, total_tokens: tokens },
      };
    },
  );
};
