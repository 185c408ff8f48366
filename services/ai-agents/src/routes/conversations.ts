import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { errors, errorResponses } from '@aicache/service-kit';
import { Type } from 'typebox';
import type { Conversation } from '../domain/types.js';
import { ConversationSchema, pageOf, Paging, Uuid } from '../schemas.js';
import type { RouteDeps } from './deps.js';

const AgentParams = Type.Object({ agentId: Uuid });
const IdParams = Type.Object({ id: Uuid });
const CreateBody = Type.Object(
  { title: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) },
  { additionalProperties: false },
);
const ConversationDetail = Type.Object({ ...ConversationSchema.properties, messageCount: Type.Integer() });

export const conversationRoutes: FastifyPluginAsync<RouteDeps> = async (scope, { store }) => {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  async function requireAgent(agentId: string) {
    const agent = await store.getAgent(agentId);
    if (!agent) throw errors.NotFound('agent', agentId);
    return agent;
  }

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
    async (req, reply) => {
      await requireAgent(req.params.agentId);
      const conversation: Conversation = {
        id: randomUUID(),
        agentId: req.params.agentId,
        title: req.body.title ?? null,
        createdAt: new Date().toISOString(),
      };
      // The agent may be deleted meanwhile: then nothing is written, and the answer is the same 404.
      if (!(await store.createConversation(conversation))) throw errors.NotFound('agent', req.params.agentId);
      return reply.code(201).send(conversation);
    },
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
      await requireAgent(req.params.agentId);
      const { limit, offset } = req.query;
      const { items, total } = await store.listConversations(req.params.agentId, limit, offset);
      return { items, total, limit, offset };
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
    async (req) => {
      await requireAgent(req.params.agentId);
      return { deleted: await store.deleteAgentConversations(req.params.agentId) };
    },
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
    async (req) => {
      const conversation = await store.getConversation(req.params.id);
      if (!conversation) throw errors.NotFound('conversation', req.params.id);
      return { ...conversation, messageCount: await store.countMessages(conversation.id) };
    },
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
      const conversation = await store.getConversation(req.params.id);
      if (!conversation) throw errors.NotFound('conversation', req.params.id);
      await store.deleteConversation(conversation);
      return reply.code(204).send(null);
    },
  );
};
