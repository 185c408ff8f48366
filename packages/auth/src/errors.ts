import createError from '@fastify/error';

export const Unauthorized = createError<'UNAUTHORIZED', 401, [message: string]>('UNAUTHORIZED', '%s', 401);
export const Forbidden = createError<'FORBIDDEN', 403, [message: string]>('FORBIDDEN', '%s', 403);
export const RateLimited = createError<'RATE_LIMITED', 429, [message: string]>('RATE_LIMITED', '%s', 429);
export const AuthUnavailable = createError<'AUTH_UNAVAILABLE', 503, [detail: string]>('AUTH_UNAVAILABLE', 'authentication is unavailable: %s', 503);
