import createError from '@fastify/error';

/** The embeddings backend answered, but with an error or with something that is not a valid embeddings answer. */
export const EmbeddingsProviderError = createError<'EMBEDDINGS_PROVIDER_ERROR', 502, [string, string]>(
  'EMBEDDINGS_PROVIDER_ERROR',
  'embeddings provider %s failed: %s',
  502,
);

/** The embeddings backend could not be reached (connection refused, DNS, timeout). */
export const EmbeddingsProviderUnavailable = createError<'EMBEDDINGS_PROVIDER_UNAVAILABLE', 503, [string, string]>(
  'EMBEDDINGS_PROVIDER_UNAVAILABLE',
  'embeddings provider %s is unreachable: %s',
  503,
);

export const UnknownModel = createError<'UNKNOWN_MODEL', 400, [string, string]>(
  'UNKNOWN_MODEL',
  "unknown model '%s'; available models: %s",
  400,
);

export const ModelNotFound = createError<'MODEL_NOT_FOUND', 404, [string]>('MODEL_NOT_FOUND', "model '%s' not found", 404);




/** Names the request field an error is about; OpenAI-shaped errors show it as `param`. */
export function aboutParam<E extends Error>(err: E, param: string): E & { param: string } {
  return Object.assign(err, { param });
}
