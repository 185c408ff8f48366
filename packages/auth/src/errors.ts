import createError from '@fastify/error';

export const Unauthorized = createError<'UNAUTHORIZED', 401, [message: string]>('UNAUTHORIZED', '%s', 401);
export const Forbidden = createError<'FORBIDDEN', 403, [message: string]>('FORBIDDEN', '%s', 403);
export const RateLimited = createError<'RATE_LIMITED', 429, [message: string]>('RATE_LIMITED', '%s', 429);
export const AuthUnavailable = createError<'AUTH_UNAVAILABLE', 503, [detail: string]>('AUTH_UNAVAILABLE', 'authentication is unavailable: %s', 503);
/** The same code and message as the kit's `errors.NotFound` (the kit depends on this package, not the other way). */
export const NotFound = createError<'NOT_FOUND', 404, [resource: string, id: string]>('NOT_FOUND', "%s '%s' not found", 404);
/** The kit's code for a request asking more than may be done at once. */
export const BodyTooLarge = createError<'BODY_TOO_LARGE', 413, [message: string]>('BODY_TOO_LARGE', '%s', 413);
