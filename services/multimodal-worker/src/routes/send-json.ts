import type { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';

/** Sends JSON that is already bytes (a cached answer) or a stream of them (jsonArrayStream), with its x-cache outcome. */
export function sendJson(reply: FastifyReply, cache: string, body: Buffer | Readable): FastifyReply {
  return reply.header('x-cache', cache).type('application/json; charset=utf-8').send(body);
}
