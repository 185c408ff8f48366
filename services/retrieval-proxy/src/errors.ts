import createError from '@fastify/error';

/** The state Redis (document index) did not answer: nothing was changed, retry later. */
export const StateUnavailable = createError<'STATE_UNAVAILABLE', 503, [detail: string]>(
  'STATE_UNAVAILABLE',
  'document index is unavailable: %s',
  503,
);
