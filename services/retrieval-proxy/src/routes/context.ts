import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { withCacheHeader } from '@aicache/service-kit';
import { sendCached, type Retrieval } from '../lib/retrieval.js';
import { Citation, ErrorResponse, Filters, Query, ScoreThreshold } from '../schemas.js';

export interface ContextRoutesOptions {
  retrieval: Retrieval;
}

const ContextBody = Type.Object(
  {
    query: Query,
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 50, default: 5 })),
    filters: Type.Optional(Filters),
    scoreThreshold: Type.Optional(ScoreThreshold),
    maxChars: Type.Optional(Type.Integer({ minimum: 200, maximum: 100_000, default: 4000 })),
  },
  { additionalProperties: false },
);

const ContextResponse = Type.Object({
  query: Type.String({ description: 'The normalized query' }),
  sections: Type.Array(
    Type.Object({
      documentId: Type.String(),
      title: Type.String(),
      chunkIndex: Type.Integer(),
      text: Type.String(),
      score: Type.Number(),
    }),
  ),
  citations: Type.Array(Type.Object({ id: Type.Integer({ minimum: 1 }), ...Citation.properties })),
  text: Type.String({ description: 'Sections joined by a blank line, each prefixed with [n]; at most maxChars characters' }),
  truncated: Type.Boolean({ description: 'A section was cut or left out to stay within maxChars' }),
});

export async function contextRoutes(scope: FastifyInstance, opts: ContextRoutesOptions): Promise<void> {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();

  app.post(
    '/api/v1/context',
    {
      schema: {
        tags: ['search'],
        summary: 'A context bundle for a prompt: top sections merged with [n] citation markers',
        description:
          'Runs the search for the query, then merges the best sections into one text of at most maxChars characters with ' +
          'citations numbered 1..n. Cached (context_bundles) per normalized request and corpus version; header `x-cache`.',
        body: ContextBody,
        response: { 200: withCacheHeader(ContextResponse), 400: ErrorResponse, 502: ErrorResponse, 503: ErrorResponse },
      },
    },
    async (request, reply) => {
      return sendCached(reply, await opts.retrieval.context(request.body, request.id));
    },
  );
}
