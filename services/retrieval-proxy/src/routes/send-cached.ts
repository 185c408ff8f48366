import type { FastifyReply } from 'fastify';
import type { CachedAnswer } from '../domain/retrieval-service.js';

/** Replays cached JSON bytes as they are (no re-serialization) and says whether they came from the cache. */
export function sendCached(reply: FastifyReply, answer: CachedAnswer): FastifyReply {
  return reply.header('x-cache', answer.hit ? 'hit' : 'miss').type('application/json; charset=utf-8').send(answer.body);
}
