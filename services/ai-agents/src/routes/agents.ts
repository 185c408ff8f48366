import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { errorResponses } from '@aicache/service-kit';
import { Type } from 'typebox';
import { AgentSchema, pageOf, Paging, SettingsInput, Uuid } from '../schemas.js';
import { tenant, type RouteDeps } from './deps.js';

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

export const agentRoutes: FastifyPluginAsync<RouteDeps> = async (scope, { agents }) => {
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
    async (req, reply) => reply.code(201).send(await agents.create(tenant(req), req.body)),
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
      return { ...(await agents.list(tenant(req), limit, offset)), limit, offset };
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
    async (req) => agents.get(tenant(req), req.params.id),
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
    async (req) => agents.update(tenant(req), req.params.id, req.body),
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
      await agents.delete(tenant(req), req.params.id);
      return reply.code(204).send(null);
    },
  );
};
