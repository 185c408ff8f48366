import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { errorResponses } from '@aicache/service-kit';
import { Type } from 'typebox';
import { Citation, MessageSchema, Uuid } from '../schemas.js';
import { actingFor, tenant, type RouteDeps } from './deps.js';

const IdParams = Type.Object({ id: Uuid });
const PostBody = Type.Object({ content: Type.String({ minLength: 1, maxLength: 16000 }) }, { additionalProperties: false });
const PostResponse = Type.Object({
  conversationId: Type.String(),
  userMessage: MessageSchema,
  reply: Type.Object({
    id: Type.String(),
    role: Type.Literal('assistant'),
    content: Type.String(),
    citations: Type.Array(Citation),
    createdAt: Type.String({ format: 'date-time' }),
  }),
  citations: Type.Array(Citation),
  provider: Type.String(),
});
const HistoryQuery = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
    before: Type.Optional(Type.String({ pattern: '^[0-9]{1,9}$', description: 'nextCursor of the previous page' })),
  },
  { additionalProperties: false },
);
const HistoryResponse = Type.Object({
  items: Type.Array(MessageSchema, { description: 'Oldest first; the newest message is last' }),
  nextCursor: Type.Union([Type.String(), Type.Null()], { description: 'Pass as `before` for older messages; null at the start' }),
  total: Type.Integer(),
});

export const messageRoutes: FastifyPluginAsync<RouteDeps> = async (scope, { conversations }) => {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  app.post(
    '/api/v1/conversations/:id/messages',
    {
      schema: {
        tags: ['messages'],
        summary: 'Send a message and get the agent’s reply',
        description:
          'The user message is stored first. Context comes from retrieval-proxy; when the proxy (or the language model) ' +
          'fails the answer is 503/502 and the user message stays in the history, so nothing the user wrote is lost. ' +
          'The retrieval query is the message with whitespace collapsed; past 2,000 characters it keeps the first and the ' +
          'last ~1,000, cut at word boundaries and joined by " … " (the model still gets the whole message). ' +
          '404 when the conversation is deleted while the reply is made (nothing is left behind); 409 when the agent ' +
          'was stored with filters retrieval-proxy refuses (change them with PATCH /api/v1/agents/{id}).',
        params: IdParams,
        body: PostBody,
        response: { 201: PostResponse, ...errorResponses(400, 404, 409, 502, 503) },
      },
    },
    async (req, reply) => reply.code(201).send(await conversations.send(actingFor(req), req.params.id, req.body.content, String(req.id))),
  );

  app.get(
    '/api/v1/conversations/:id/messages',
    {
      schema: {
        tags: ['messages'],
        summary: 'Message history, paged backwards from the newest',
        params: IdParams,
        querystring: HistoryQuery,
        response: { 200: HistoryResponse, ...errorResponses(400, 404) },
      },
    },
    async (req) =>
      conversations.history(tenant(req), req.params.id, req.query.limit, req.query.before === undefined ? undefined : Number(req.query.before)),
  );
};
