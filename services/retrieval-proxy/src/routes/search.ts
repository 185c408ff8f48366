import type { FastifyInstance } from 'fastify';
import type { AuthRouteConfig } from '@aicache/auth';
import { peerCall, requestTenant } from './tenant.js';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { SearchRequest, SearchResponse } from '@aicache/contracts';
import { withCacheHeader, errorResponses, sendCachedJson } from '@aicache/service-kit';
import type { RetrievalService } from '../domain/retrieval-service.js';

export interface SearchRoutesOptions {
  retrieval: RetrievalService;
}

export async function searchRoutes(scope: FastifyInstance, opts: SearchRoutesOptions): Promise<void> {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();

  app.post(
    '/api/v1/search',
    {
      // A search writes nothing: a read-only key may search, though the route is a POST.
      config: { auth: 'read' } satisfies AuthRouteConfig,
      schema: {
        tags: ['search'],
        summary: 'Semantic search over the document chunks',
        description:
          'Ranks chunks by cosine similarity with the query embedding (fetched from the multimodal-worker); with `hybrid` (pgvector engine), ' +
          'fused with a full-text ranking of the chunks holding every word of the query. Answers are cached ' +
          '(search_results) per normalized request and corpus version; header `x-cache: hit|miss`; header `x-embedding-model` names the model the query was embedded with (the active model of the index). Worker down: 503 unless cached. ' +
          'While the index store does not answer (a failover), answers are for the corpus this replica last knew, with header `x-corpus: last-known`.',
        body: SearchRequest,
        response: { 200: withCacheHeader(SearchResponse), ...errorResponses(400, 502, 503) },
      },
    },
    async (request, reply) => {
      const answer = await opts.retrieval.search(requestTenant(request), request.body, peerCall(request));
      if (answer.corpus === 'last-known') reply.header('x-corpus', 'last-known');
      if (answer.model) reply.header('x-embedding-model', answer.model);
      return sendCachedJson(reply, answer.hit ? 'hit' : 'miss', answer.body);
    },
  );
}
