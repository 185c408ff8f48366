import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { errors } from '@aicache/service-kit';
import { Type } from 'typebox';
import { DEFAULT_SETTINGS, type Agent } from '../domain/types.js';
import { AgentSchema, errorResponses, pageOf, Paging, SettingsInput, Uuid } from '../schemas.js';
import type { RouteDeps } from './deps.js';

const CreateAgentBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100 }),
    instructions: Type.String({ maxLength: 8000, default: '' }),
    settings: Type.Optional(SettingsInput),
  },
  { additionalProperties: false },
);

const IdParams = Type.Object({ id: Uuid });

export const agentRoutes: FastifyPluginAsyncTypebox<RouteDeps> = async (app, { store }) => {
  app.post(
    '/api/v1/agents',
    {
      schema: {
        tags: ['agents'],
        summary: 'Create an agent',
        body: CreateAgentBody,
        response: { 201: AgentSchema, 400: errorResponses[400] },
      },
    },
    async (req, reply) => {
      const { name, instructions, settings } = req.body;
      if (name.trim().length === 0) throw errors.BadRequest('name must not be blank');
      const agent: Agent = {
        id: randomUUID(),
        name,
        instructions: instructions ?? '',
        settings: { ...DEFAULT_SETTINGS, ...settings },
        createdAt: new Date().toISOString(),
      };
      await store.createAgent(agent);
      return reply.code(201).send(agent);
    },
  );

  app.get(
    '/api/v1/agents',
    {
      schema: {
        tags: ['agents'],
        summary: 'List agents, oldest first',
        querystring: Paging,
        response: { 200: pageOf(AgentSchema), 400: errorResponses[400] },
      },
    },
    async (req) => {
      const { limit, offset } = req.query;
      const { items, total } = await store.listAgents(limit, offset);
      return { items, total, limit, offset };
    },
  );

  app.get(
    '/api/v1/agents/:id',
    {
      schema: {
        tags: ['agents'],
        summary: 'Get an agent',
        params: IdParams,
        response: { 200: AgentSchema, ...errorResponses },
      },
    },
    async (req) => {
      const agent = await store.getAgent(req.params.id);
      if (!agent) throw errors.NotFound('agent', req.params.id);
      return agent;
    },
  );

  app.delete(
    '/api/v1/agents/:id',
    {
      schema: {
        tags: ['agents'],
        summary: 'Delete an agent with its conversations and memory',
        params: IdParams,
        response: { 204: Type.Null(), ...errorResponses },
      },
    },
    async (req, reply) => {
      const existed = await store.deleteAgent(req.params.id);
      if (!existed) throw errors.NotFound('agent', req.params.id);
      return reply.code(204).send(null);
    },
  );
};
