import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { withCacheHeader } from '@aicache/service-kit';
import { sendCached, type Retrieval } from '../lib/retrieval.js';
import { Citation, ErrorResponse, Filters, Metadata, Query, ScoreThreshold } from '../schemas.js';

export interface SearchRoutesOptions {
  retrieval: Retrieval;
}

const SearchBody = Type.Object(
  {
    query: Query,
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 50, default: 10 })),
    filters: Type.Optional(Filters),
    scoreThreshold: Type.Optional(ScoreThreshold),
  },
  { additionalProperties: false },
);

const SearchResponse = Type.Object({
  query: Type.String({ description: 'The normalized query' }),
  results: Type.Array(
    Type.Object({
      documentId: Type.String(),
      chunkIndex: Type.Integer(),
      title: Type.String(),
      text: Type.String(),
      score: Type.Number({ description: 'Cosine similarity' }),
      metadata: Metadata,
      citation: Citation,
    }),
  ),
  total: Type.Integer({ description: 'Chunks that passed the filters and the threshold, before the limit' }),
});

export async function searchRoutes(scope: FastifyInstance, opts: SearchRoutesOptions): Promise<void> {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();

  app.post(
    '/api/v1/search',
    {
      schema: {
        tags: ['search'],
        summary: 'Semantic search over the document chunks',
        description:
          'Ranks chunks by cosine similarity with the query embedding (fetched from the multimodal-worker). Answers are cached ' +
          '(search_results) per normalized request and corpus version; header `x-cache: hit|miss`. Worker down: 503 unless cached.',
        body: SearchBody,
        response: { 200: withCacheHeader(SearchResponse), 400: ErrorResponse, 502: ErrorResponse, 503: ErrorResponse },
      },
    },
    async (request, reply) => {
      return sendCached(reply, await opts.retrieval.search(request.body, request.id));
    },
  );
}
