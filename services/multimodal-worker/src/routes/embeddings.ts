import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from 'typebox';
import { EmbeddingItem, EmbeddingsRequest, EmbeddingsResponse } from '@aicache/contracts';
import { withCacheHeader, sendCachedJson } from '@aicache/service-kit';
import type { EmbeddingService } from '../domain/embedding-service.js';
import { jsonArrayStream, vectorBase64, vectorJson } from '../domain/json-stream.js';
import { countTokens } from '../domain/usage.js';
import { MAX_BATCH_CHARS, MAX_INPUTS, MAX_INPUT_CHARS } from '../schemas.js';
import { openAIErrorResponses, useOpenAIErrors } from './openai-errors.js';

export interface EmbeddingsRoutesOptions {
  embeddings: EmbeddingService;
  bodyLimit: number;
  /** Appended to the 413 of a body over bodyLimit: where larger work goes instead. */
  tooLargeHint?: string;
}

// The contract's request (what retrieval-proxy sends) plus OpenAI's fields the proxy never sends. No maxLength
// and no maxItems in the contract: the handler checks the model's own input limit (a 400 naming it) in O(1) per
// input where the validator would count code points of megabytes, and a batch over MAX_INPUTS is a 413 (too much
// work), not a malformed request.
const EmbeddingsBody = Type.Object(
  {
    ...EmbeddingsRequest.properties,
    input: {
      ...EmbeddingsRequest.properties.input,
      description:
        `A non-empty string or an array of 1..${MAX_INPUTS} non-empty strings, each at most ${MAX_INPUT_CHARS} characters ` +
        `and ${MAX_BATCH_CHARS} in all (413 past ${MAX_INPUTS} inputs or ${MAX_BATCH_CHARS} characters)`,
    },
    dimensions: Type.Optional(Type.Integer({ minimum: 1, maximum: 65_536, description: 'Accepted when it equals the model\'s; models here do not shorten vectors' })),
    user: Type.Optional(Type.String({ maxLength: 256, description: 'Accepted for OpenAI compatibility; ignored' })),
  },
  { additionalProperties: false },
);
// Every request the contract allows is one this route takes: the build fails here if the contract grows a field
// the route does not declare.
const _takesTheContract: (r: EmbeddingsRequest) => Static<typeof EmbeddingsBody> = (r) => r;
void _takesTheContract;

// The contract's answer (what the proxy reads) plus OpenAI's `object` tags and `usage`.
const EmbeddingsAnswer = Type.Object({
  ...EmbeddingsResponse.properties,
  object: Type.Literal('list'),
  data: Type.Array(Type.Object({ object: Type.Literal('embedding'), ...EmbeddingItem.properties })),
  usage: Type.Object({ prompt_tokens: Type.Integer(), total_tokens: Type.Integer() }),
});

export const embeddingsRoutes: FastifyPluginAsync<EmbeddingsRoutesOptions> = async (scope, opts) => {
  useOpenAIErrors(scope, opts.tooLargeHint ? { bodyTooLarge: opts.tooLargeHint } : {});
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();

  app.post(
    '/api/v1/embeddings',
    {
      bodyLimit: opts.bodyLimit,
      // Embedding changes no one's data: a read key may (counted against EMBEDDINGS_INPUTS_PER_MINUTE).
      config: { auth: 'read' },
      schema: {
        tags: ['embeddings'],
        summary: 'Create embeddings (OpenAI-compatible)',
        description:
          'Each distinct input is cached on its own (`<model>:<sha256(input)>`); only misses reach the model. ' +
          'Header `x-cache`: hit (all inputs cached), partial, or miss (none). usage counts are rough (words and punctuation). ' +
          'Errors come in OpenAI\'s shape: `{"error": {"message", "type", "param", "code"}}`.',
        body: EmbeddingsBody,
        response: { 200: withCacheHeader(EmbeddingsAnswer, ['hit', 'partial', 'miss']), ...openAIErrorResponses(400, 401, 403, 413, 415, 429, 502, 503) },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const inputs = typeof body.input === 'string' ? [body.input] : body.input;
      // Inputs per minute per principal (EMBEDDINGS_INPUTS_PER_MINUTE), counted across replicas.
      await scope.auth.chargeInputs(request, reply, inputs.length);
      const result = await opts.embeddings.embedRequest(inputs, { model: body.model, dimensions: body.dimensions });
      const tokens = await countTokens(inputs);
      const encode = body.encoding_format === 'base64' ? (v: Float32Array) => `"${vectorBase64(v)}"` : vectorJson;
      // Streamed: 2048 vectors as JSON numbers are tens of megabytes, encoded without holding the event loop.
      const answer = jsonArrayStream(
        '{"object":"list","data":[',
        result.vectors,
        (v, index) => `{"object":"embedding","index":${index},"embedding":${encode(v)}}`,
        `],"model":${JSON.stringify(result.model)},"usage":{"prompt_tokens":${tokens},"total_tokens":${tokens}}}`,
      );
      return sendCachedJson(reply, result.cache, answer);
    },
  );
};
