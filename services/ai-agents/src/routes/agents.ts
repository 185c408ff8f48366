import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { errors, errorResponses } from '@aicache/service-kit';
import { Type } from 'typebox';
import { DEFAULT_SETTINGS, type Agent, type AgentSettings } from '../domain/types.js';
import { AgentSchema, pageOf, Paging, SettingsInput, Uuid } from '../schemas.js';
import type { RouteDeps } from './deps.js';

const CreateAgentBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100 }),
    instructions: Type.String({ maxLength: 8000, default: '' }),
    settings: Type.Optional(SettingsInput),
  },
  { additionalProperties: false },
);

const UpdateAgentBody = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
    instructions: Type.Optional(Type.String({ maxLength: 8000 })),
    settings: Type.Optional(SettingsInput),
  },
  {
    additionalProperties: false,
    minProperties: 1,
    description: 'Fields to change. Each setting given replaces that setting; `filters` is replaced as a whole (`{}` removes every filter).',
  },
);

const IdParams = Type.Object({ id: Uuid });

/** Settings with the given ones over `base`; empty filters are no filters. */
function mergeSettings(base: AgentSettings, given: Partial<AgentSettings> | undefined): AgentSettings {
  const settings = { ...base, ...given };
  if (settings.filters && Object.keys(settings.filters).length === 0) delete settings.filters;
  return settings;
}

export const agentRoutes: FastifyPluginAsync<RouteDeps> = async (scope, { store }) => {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  app.post(
    '/api/v1/agents',
    {
      schema: {
        tags: ['agents'],
        summary: 'Create an agent',
        description: '`settings.filters` are checked with retrieval-proxy\'s own filter schema: filters it would refuse are a 400 here.',
        body: CreateAgentBody,
        response: { 201: AgentSchema, ...errorResponses(400) },
      },
    },
    async (req, reply) => {
      const { name, instructions, settings } = req.body;
      if (name.trim().length === 0) throw errors.BadRequest('name must not be blank');
      const agent: Agent = {
        id: randomUUID(),
        name,
        instructions: instructions ?? '',
        settings: mergeSettings(DEFAULT_SETTINGS, settings),
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
        response: { 200: pageOf(AgentSchema), ...errorResponses(400) },
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
        response: { 200: AgentSchema, ...errorResponses(400, 404) },
      },
    },
    async (req) => {
      const agent = await store.getAgent(req.params.id);
      if (!agent) throw errors.NotFound('agent', req.params.id);
      return agent;
    },
  );

  app.patch(
    '/api/v1/agents/:id',
    {
      schema: {
        tags: ['agents'],
        summary: 'Change an agent',
        description:
          'Changes name, instructions or settings (the others stay). `settings.filters` are checked with retrieval-proxy\'s own ' +
          'filter schema, as at creation. An agent deleted meanwhile is not brought back (404).',
        params: IdParams,
        body: UpdateAgentBody,
        response: { 200: AgentSchema, ...errorResponses(400, 404, 409) },
      },
    },
    async (req) => {
      const { name, instructions, settings } = req.body;
      if (name !== undefined && name.trim().length === 0) throw errors.BadRequest('name must not be blank');
      const agent = await store.updateAgent(req.params.id, (current) => ({
        ...current,
        ...(name !== undefined ? { name } : {}),
        ...(instructions !== undefined ? { instructions } : {}),
        settings: mergeSettings(current.settings, settings),
      }));
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
        response: { 204: Type.Null(), ...errorResponses(400, 404) },
      },
    },
    async (req, reply) => {
      const existed = await store.deleteAgent(req.params.id);
      if (!existed) throw errors.NotFound('agent', req.params.id);
      return reply.code(204).send(null);
    },
  );
};
