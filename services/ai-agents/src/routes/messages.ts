import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { errors, errorResponses } from '@aicache/service-kit';
import { Type } from 'typebox';
import { fetchContext, filtersProblem } from '../domain/retrieval.js';
import type { MemoryItem, Message } from '../domain/types.js';
import { Citation, MessageSchema, Uuid } from '../schemas.js';
import type { RouteDeps } from './deps.js';

/** How many recent memory items the chat provider sees. */
const PROMPT_MEMORY_ITEMS = 20;

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

export const messageRoutes: FastifyPluginAsyncTypebox<RouteDeps> = async (app, { store, proxy, provider }) => {
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
    async (req, reply) => {
      const conversation = await store.getConversation(req.params.id);
      if (!conversation) throw errors.NotFound('conversation', req.params.id);
      const agent = await store.getAgent(conversation.agentId);
      if (!agent) throw errors.NotFound('agent', conversation.agentId);
      if (req.body.content.trim().length === 0) throw errors.BadRequest('content must not be blank');
      const refused = filtersProblem(agent.settings.filters);
      if (refused) {
        throw errors.Conflict(`agent '${agent.id}' has filters retrieval-proxy refuses (${refused}); change them with PATCH /api/v1/agents/${agent.id}`);
      }
      const gone = () => errors.NotFound('conversation', conversation.id);

      const userMessage: Message = { id: randomUUID(), role: 'user', content: req.body.content, createdAt: new Date().toISOString() };
      if (!(await store.appendMessage(conversation.id, userMessage))) throw gone();

      const context = await fetchContext(proxy, agent, userMessage.content, String(req.id));
      const { items: memory } = await store.readMemory(agent.id, PROMPT_MEMORY_ITEMS);
      const answer = await provider.reply({ agent, memory, context, message: userMessage.content, requestId: String(req.id) });

      // The proxy's citations as it sent them: [n] in the reply is the section whose citation id is n.
      const byId = new Map(context.map((s) => [s.citation.id, s.citation]));
      const citations = answer.citationsUsed.map((n) => byId.get(n)).filter((c): c is Citation => c !== undefined);
      const assistant = {
        id: randomUUID(),
        role: 'assistant' as const,
        content: answer.content,
        citations,
        createdAt: new Date().toISOString(),
      };
      // Deleted meanwhile (the conversation, or the agent with it): the write is refused, nothing is left behind.
      if (!(await store.appendMessage(conversation.id, assistant))) throw gone();
      const remembered: MemoryItem[] = [
        { role: 'user', content: userMessage.content, conversationId: conversation.id, at: userMessage.createdAt },
        { role: 'assistant', content: assistant.content, conversationId: conversation.id, at: assistant.createdAt },
      ];
      if (!(await store.appendMemory(agent.id, remembered, agent.settings.memoryMaxItems))) throw gone();

      return reply.code(201).send({ conversationId: conversation.id, userMessage, reply: assistant, citations, provider: provider.id });
    },
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
    async (req) => {
      const conversation = await store.getConversation(req.params.id);
      if (!conversation) throw errors.NotFound('conversation', req.params.id);
      const before = req.query.before === undefined ? undefined : Number(req.query.before);
      return store.pageMessages(conversation.id, req.query.limit, before);
    },
  );
};
