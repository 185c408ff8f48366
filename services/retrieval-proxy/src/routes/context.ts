import type { FastifyInstance } from 'fastify';
import type { AuthRouteConfig } from '@aicache/auth';
import { peerCall, requestTenant } from './tenant.js';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { ContextRequest, ContextResponse } from '@aicache/contracts';
import { withCacheHeader, errorResponses, sendCachedJson } from '@aicache/service-kit';
import type { RetrievalService } from '../domain/retrieval-service.js';

export interface ContextRoutesOptions {
  retrieval: RetrievalService;
}

export async function contextRoutes(scope: FastifyInstance, opts: ContextRoutesOptions): Promise<void> {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();

  app.post(
    '/api/v1/context',
    {
      // A search writes nothing: a read-only key may search, though the route is a POST.
      config: { auth: 'read' } satisfies AuthRouteConfig,
      schema: {
        tags: ['search'],
        summary: 'A context bundle for a prompt: top sections merged with [n] citation markers',
        description:
          'Runs the search for the query, then merges the best sections into one text of at most maxChars characters. ' +
          'Each section carries its own citation, numbered 1..n in order: `[n]` in `text` is `sections[n-1].citation`. ' +
          'Cached (context_bundles) per normalized request and corpus version; header `x-cache`. ' +
          'While the index store does not answer (a failover), answers are for the corpus this replica last knew, with header `x-corpus: last-known`.',
        body: ContextRequest,
        response: { 200: withCacheHeader(ContextResponse), ...errorResponses(400, 502, 503) },
      },
    },
    async (request, reply) => {
      const answer = await opts.retrieval.context(requestTenant(request), request.body, peerCall(request));
      if (answer.corpus === 'last-known') reply.header('x-corpus', 'last-known');
      if (answer.model) reply.header('x-embedding-model', answer.model);
      return sendCachedJson(reply, answer.hit ? 'hit' : 'miss', answer.body);
    },
  );
}
