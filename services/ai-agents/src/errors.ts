import createError from '@fastify/error';

/** The chat model answered with an error status or a body that is not a chat completion. */
export const LlmProviderError = createError<[string]>('LLM_PROVIDER_ERROR', 'Language model provider failed: %s', 502);

/** The chat model could not be reached (connection refused, DNS, timeout). */
export const LlmProviderUnavailable = createError<[string]>(
  'LLM_PROVIDER_UNAVAILABLE',
  'Language model provider unreachable: %s',
  503,
);
