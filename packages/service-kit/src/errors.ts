import createError from '@fastify/error';
import { ErrorResponse } from '@aicache/contracts';

/**
 * The kit's errors: thrown from handlers, rendered by the kit's error handler as
 * {statusCode, code, error, message}. Services make their own with createError when they need more.
 */
export const errors = {
  /** errors.NotFound('document', id) */
  NotFound: createError<'NOT_FOUND', 404, [resource: string, id: string | number]>('NOT_FOUND', "%s '%s' not found", 404),
  BadRequest: createError<'BAD_REQUEST', 400, [message: string]>('BAD_REQUEST', '%s', 400),
  Unauthorized: createError<'UNAUTHORIZED', 401, [message: string]>('UNAUTHORIZED', '%s', 401),
  Conflict: createError<'CONFLICT', 409, [message: string]>('CONFLICT', '%s', 409),
  /** More than one request may send or ask for (the same code as a body over the route's bodyLimit). */
  BodyTooLarge: createError<'BODY_TOO_LARGE', 413, [message: string]>('BODY_TOO_LARGE', '%s', 413),
  UnsupportedMediaType: createError<'UNSUPPORTED_MEDIA_TYPE', 415, [message: string]>('UNSUPPORTED_MEDIA_TYPE', '%s', 415),
  /** The peer could not be reached or did not answer in time. */
  PeerUnavailable: createError<'PEER_UNAVAILABLE', 503, [peer: string, detail: string]>('PEER_UNAVAILABLE', '%s is unavailable: %s', 503),
  /** The peer answered with a non-2xx status. */
  PeerError: createError<'PEER_ERROR', 502, [peer: string, status: number, detail: string]>('PEER_ERROR', '%s answered %d: %s', 502),
};

/** The one error body every route answers with; declared with the other wire schemas in @aicache/contracts. */
export { ErrorResponse };

/**
 * The error responses of a route schema, one way in every service: `response: { 200: Thing, ...errorResponses(400, 404) }`.
 * (The cache library's admin routes declare their own, alike, as packages/cache does not depend on the kit.)
 */
export function errorResponses<S extends number>(...statuses: S[]): Record<S, typeof ErrorResponse> {
  return Object.fromEntries(statuses.map((s) => [s, ErrorResponse])) as Record<S, typeof ErrorResponse>;
}
