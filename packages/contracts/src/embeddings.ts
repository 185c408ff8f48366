import { Type, type Static } from 'typebox';

/**
 * retrieval-proxy → multimodal-worker: POST /api/v1/embeddings. The worker's route takes this request (plus
 * OpenAI's `dimensions` and `user`, which the proxy never sends) and answers at least this; the proxy sends
 * nothing else and reads nothing else.
 */

export const EmbeddingModelId = Type.String({ minLength: 1, maxLength: 200, description: 'Model id; default: the worker\'s default model' });

/** One text to embed. Length limits are the model's and the batch's, checked by the worker (400/413). */
export const EmbeddingInput = Type.String({ minLength: 1 });

export const EncodingFormat = Type.Union([Type.Literal('float'), Type.Literal('base64')], { description: 'base64: float32 little-endian bytes' });

export const EmbeddingsRequest = Type.Object(
  {
    model: Type.Optional(EmbeddingModelId),
    input: Type.Union([EmbeddingInput, Type.Array(EmbeddingInput, { minItems: 1 })]),
    encoding_format: Type.Optional(EncodingFormat),
  },
  { additionalProperties: false },
);
export type EmbeddingsRequest = Static<typeof EmbeddingsRequest>;

export const EmbeddingItem = Type.Object({
  index: Type.Integer({ minimum: 0, description: 'Position of the input this vector embeds' }),
  embedding: Type.Union([Type.Array(Type.Number()), Type.String({ description: 'base64 of float32 little-endian bytes' })]),
});
export type EmbeddingItem = Static<typeof EmbeddingItem>;

export const EmbeddingsResponse = Type.Object({
  data: Type.Array(EmbeddingItem),
  model: Type.String(),
});
export type EmbeddingsResponse = Static<typeof EmbeddingsResponse>;
