import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { errorResponses } from '@aicache/service-kit';
import { Type } from 'typebox';
import { ConversationSchema, pageOf, Paging, Uuid } from '../schemas.js';
import { tenant, type RouteDeps } from './deps.js';

const AgentParams = Type.Object({ agentId: Uuid });
const IdParams = Type.Object({ id: Uuid });
const CreateBody = Type.Object(
  { title: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) },
  { additionalProperties: false },
);
const ConversationDetail = Type.Object({ ...ConversationSchema.properties, messageCount: Type.Integer() });

export const conversationRoutes: FastifyPluginAsync<RouteDeps> = async (scope, { conversations }) => {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();

  app.post(
    '/api/v1/agents/:agentId/conversations',
    {
      // A POST without a body is fine: the title is optional. (A JSON `null` body is still a 400.)
      preValidation: async (req) => {
        if (req.body === undefined) req.body = {};
      },
      schema: {
        tags: ['conversations'],
        summary: 'Start a conversation with an agent',
        params: AgentParams,
        body: CreateBody,
        response: { 201: ConversationSchema, ...errorResponses(400, 404) },
      },
    },
    async (req, reply) => reply.code(201).send(await conversations.create(tenant(req), req.params.agentId, req.body.title)),
  );

  app.get(
    '/api/v1/agents/:agentId/conversations',
    {
      schema: {
        tags: ['conversations'],
        summary: "List an agent's conversations, oldest first",
        params: AgentParams,
        querystring: Paging,
        response: { 200: pageOf(ConversationSchema), ...errorResponses(400, 404) },
      },
    },
    async (req) => {
      const { limit, offset } = req.query;
      return { ...(await conversations.list(tenant(req), req.params.agentId, limit, offset)), limit, offset };
    },
  );

  app.delete(
    '/api/v1/agents/:agentId/conversations',
    {
      schema: {
        tags: ['conversations'],
        summary: "Delete all of an agent's conversations",
        params: AgentParams,
        response: { 200: Type.Object({ deleted: Type.Integer() }), ...errorResponses(400, 404) },
      },
    },
    async (req) => ({ deleted: await conversations.deleteAll(tenant(req), req.params.agentId) }),
  );

  app.get(
    '/api/v1/conversations/:id',
    {
      schema: {
        tags: ['conversations'],
        summary: 'Get a conversation',
        params: IdParams,
        response: { 200: ConversationDetail, ...errorResponses(400, 404) },
      },
    },
    async (req) => conversations.get(tenant(req), req.params.id),
  );

  app.delete(
    '/api/v1/conversations/:id',
    {
      schema: {
        tags: ['conversations'],
        summary: 'Delete a conversation and its messages',
        params: IdParams,
        response: { 204: Type.Null(), ...errorResponses(400, 404) },
      },
    },
    async (req, reply) => {
      await conversations.delete(tenant(req), req.params.id);
      return reply.code(204).send(null);
    },
  );
};
