import { Citation, CONTEXT_MAX_CHARS_MIN, Filters, FilterValue } from '@aicache/contracts';
import { Type } from 'typebox';

export { Citation };

export const Uuid = Type.String({ format: 'uuid', description: 'UUID' });

export const SettingsInput = Type.Object(
  {
    temperature: Type.Optional(Type.Number({ minimum: 0, maximum: 2 })),
    maxContextChars: Type.Optional(Type.Integer({ minimum: CONTEXT_MAX_CHARS_MIN, maximum: 20000 })),
    contextLimit: Type.Optional(Type.Integer({ minimum: 1, maximum: 20 })),
    filters: Type.Optional(Filters),
    hybrid: Type.Optional(
      Type.Boolean({
        description:
          "Rank the agent's context by vector and full text fused (retrieval-proxy's hybrid ranking: finds exact identifiers, " +
          "error codes and names the embedding misses), or by vector alone (false). Absent: retrieval-proxy's RETRIEVAL_HYBRID. " +
          'Needs the pgvector engine: on the Redis engine the messages of an agent with true answer 409.',
      }),
    ),
    memoryMaxItems: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
  },
  { additionalProperties: false },
);

export const Settings = Type.Object({
  temperature: Type.Number(),
  maxContextChars: Type.Integer(),
  contextLimit: Type.Integer(),
  // As stored, so an agent saved before filters were checked shows the filters retrieval-proxy refuses.
  filters: Type.Optional(Type.Record(Type.String(), FilterValue)),
  hybrid: Type.Optional(Type.Boolean()),
  memoryMaxItems: Type.Integer(),
});

export const AgentSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  instructions: Type.String(),
  settings: Settings,
  createdAt: Type.String({ format: 'date-time' }),
});

export const ConversationSchema = Type.Object({
  id: Type.String(),
  agentId: Type.String(),
  title: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String({ format: 'date-time' }),
});

export const MessageSchema = Type.Object({
  id: Type.String(),
  role: Type.Union([Type.Literal('user'), Type.Literal('assistant')]),
  content: Type.String(),
  citations: Type.Optional(Type.Array(Citation)),
  createdAt: Type.String({ format: 'date-time' }),
});

export const MemoryItemSchema = Type.Object({
  role: Type.Union([Type.Literal('user'), Type.Literal('assistant')]),
  content: Type.String(),
  conversationId: Type.String(),
  at: Type.String({ format: 'date-time' }),
});

export const Paging = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
    offset: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 0 }),
  },
  { additionalProperties: false },
);

export function pageOf<T extends Parameters<typeof Type.Array>[0]>(item: T) {
  return Type.Object({
    items: Type.Array(item),
    total: Type.Integer(),
    limit: Type.Integer(),
    offset: Type.Integer(),
  });
}
