import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { errorResponses } from '@aicache/service-kit';
import { Type } from 'typebox';
import { MemoryItemSchema, Uuid } from '../schemas.js';
import { tenant, type RouteDeps } from './deps.js';

const IdParams = Type.Object({ id: Uuid });

export const memoryRoutes: FastifyPluginAsync<RouteDeps> = async (scope, { agents }) => {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  app.get(
    '/api/v1/agents/:id/memory',
    {
      schema: {
        tags: ['memory'],
        summary: "An agent's memory (reading it refreshes its sliding TTL)",
        params: IdParams,
        response: {
          200: Type.Object({
            items: Type.Array(MemoryItemSchema, { description: 'Oldest first' }),
            ttl_seconds: Type.Union([Type.Integer(), Type.Null()], {
              description: 'Seconds until the memory expires if unused (CACHE_TTL_AGENT_MEMORY); null when it is empty',
            }),
          }),
          ...errorResponses(400, 404),
        },
      },
    },
    async (req) => {
      const { items, ttlSeconds } = await agents.memory(tenant(req), req.params.id);
      return { items, ttl_seconds: ttlSeconds };
    },
  );

  app.delete(
    '/api/v1/agents/:id/memory',
    {
      schema: {
        tags: ['memory'],
        summary: "Forget an agent's memory",
        params: IdParams,
        response: { 204: Type.Null(), ...errorResponses(400, 404) },
      },
    },
    async (req, reply) => {
      await agents.clearMemory(tenant(req), req.params.id);
      return reply.code(204).send(null);
    },
  );
};
