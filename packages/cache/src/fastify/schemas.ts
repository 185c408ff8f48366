import { Type, type Static, type TSchema } from 'typebox';
import type { CacheStats, CategoryStats } from '../types.js';

const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
const Count = Type.Integer({ minimum: 0 });
/** The seed stack's dashboards read hit rates as percentages. */
const Percent = (description: string) => Type.Number({ minimum: 0, maximum: 100, description: `${description}; percent with one decimal, e.g. 89.3` });
const CACHE_HIT_RATE = 'Share of reads (get, getOrSet, mget keys) the cache answered';

export const KEYS_MAX_ITEMS = 1000;
export const KEY_MAX_LENGTH = 1024;
export const TAGS_MAX_ITEMS = 100;
export const PATTERN_MAX_LENGTH = 512;

/** The one JSON error shape of every service. */
export const ErrorResponseSchema = Type.Object(
  {
    statusCode: Type.Integer(),
    code: Type.String(),
    error: Type.String(),
    message: Type.String(),
  },
  { description: 'Error' },
);

export const CategoryStatsSchema = Type.Object({
  hits: Count,
  misses: Count,
  sets: Count,
  deletes: Count,
  errors: Count,
  l1_hits: Type.Optional(Type.Integer({ minimum: 0, description: 'Hits served by in-process L1 tiers (also counted in hits); only for categories with an L1' })),
  hit_rate: Percent(CACHE_HIT_RATE),
  ttl: Type.Number({ description: 'Effective TTL in seconds' }),
  keys: Nullable(Type.Integer({ minimum: 0, description: 'Keys now in Redis; null where counting would be expensive' })),
});

export const CacheStatsSchema = Type.Object(
  {
    service: Type.String(),
    db: Type.Integer(),
    connected: Type.Boolean({ description: 'Redis answered' }),
    memory_used: Nullable(Type.String({ description: 'SERVER-WIDE (all DBs): Redis used_memory_human' })),
    keyspace_hits: Nullable(Type.Integer({ description: 'SERVER-WIDE (all DBs, all clients)' })),
    keyspace_misses: Nullable(Type.Integer({ description: 'SERVER-WIDE (all DBs, all clients)' })),
    hit_rate: Nullable(Percent('SERVER-WIDE keyspace hit rate (all DBs, all clients); see service_stats.hit_rate')),
    total_commands_processed: Nullable(Type.Integer({ description: 'SERVER-WIDE' })),
    connected_clients: Nullable(Type.Integer({ description: 'SERVER-WIDE' })),
    scope: Type.Object(
      { service: Type.String(), server: Type.String() },
      { description: 'Which figures are whose' },
    ),
    service_stats: Type.Object(
      {
        hits: Count,
        misses: Count,
        sets: Count,
        deletes: Count,
        errors: Count,
        hit_rate: Percent(CACHE_HIT_RATE),
        categories: Type.Record(Type.String(), CategoryStatsSchema),
      },
      { description: 'Counted by the cache library for this service, summed over every replica' },
    ),
    server: Type.Object(
      {
        version: Nullable(Type.String()),
        uptime_seconds: Nullable(Type.Integer()),
        used_memory: Nullable(Type.Integer()),
        used_memory_human: Nullable(Type.String()),
        maxmemory: Nullable(Type.Integer()),
        maxmemory_policy: Nullable(Type.String()),
        connected_clients: Nullable(Type.Integer()),
        total_commands_processed: Nullable(Type.Integer()),
        keyspace_hits: Nullable(Type.Integer()),
        keyspace_misses: Nullable(Type.Integer()),
        hit_rate: Nullable(Percent('keyspace_hits / (keyspace_hits + keyspace_misses)')),
      },
      { description: 'Redis INFO, server-wide (all DBs). Null fields when Redis did not answer' },
    ),
    nodes: Type.Optional(
      Type.Array(
        Type.Object({
          address: Type.String(),
          keys: Nullable(Type.Integer()),
          used_memory: Nullable(Type.Integer()),
          keyspace_hits: Nullable(Type.Integer()),
          keyspace_misses: Nullable(Type.Integer()),
          connected_clients: Nullable(Type.Integer()),
          total_commands_processed: Nullable(Type.Integer()),
        }),
        { description: 'On a Redis Cluster: each master\'s figures (server and the top-level figures sum them)' },
      ),
    ),
  },
  { description: 'Cache statistics. Top-level Redis figures are server-wide and kept for existing dashboards' },
);

export const CacheStatsWithStateSchema = Type.Object(
  {
    ...CacheStatsSchema.properties,
    state: Nullable(
      Type.Record(Type.String(), Type.Unknown(), {
        description: 'Figures of data this service keeps as STATE, not cache (no cache clear removes it); null when the state store did not answer',
      }),
    ),
  },
  { description: 'Cache statistics, and figures of what this service keeps as state. Top-level Redis figures are server-wide' },
);

export const RemovedSchema = Type.Object(
  { removed: Type.Integer({ minimum: 0, description: 'Keys removed' }) },
  { description: 'How many keys were removed' },
);

export const CategoryNameSchema = Type.String({ minLength: 1, maxLength: 128 });

export const ClearQuerySchema = Type.Object(
  { category: Type.Optional(CategoryNameSchema) },
  { additionalProperties: false },
);

export const InvalidateBodySchema = Type.Object(
  {
    category: Type.Optional(CategoryNameSchema),
    keys: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: KEY_MAX_LENGTH }), {
        minItems: 1,
        maxItems: KEYS_MAX_ITEMS,
        description: 'Keys of `category` to remove',
      }),
    ),
    pattern: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: PATTERN_MAX_LENGTH,
        // Control characters have no place in a key glob; they only serve to confuse logs.
        pattern: '^[^\\u0000-\\u001f\\u007f]+$',
        description: 'Redis glob over the key part of `category` (e.g. `user:42:*`)',
      }),
    ),
    tags: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: KEY_MAX_LENGTH }), {
        minItems: 1,
        maxItems: TAGS_MAX_ITEMS,
        description: 'Remove every entry of this service written with one of these tags',
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'Exactly one of keys, pattern or tags; or category alone to clear that category. keys and pattern need category; tags are service-wide.',
  },
);

export const ProbeResponseSchema = Type.Object(
  {
    status: Type.Union([Type.Literal('ok'), Type.Literal('error')]),
    cached_value: Type.Unknown({ description: 'What the probe read back; null when it read nothing' }),
    ttl: Nullable(Type.Integer({ description: 'TTL of the probe key in seconds, as Redis reported it' })),
    error: Type.Optional(Type.String({ description: 'What went wrong, when status is error' })),
  },
  { description: 'Result of the set/get/TTL/delete round trip' },
);

export type CacheStatsResponse = Static<typeof CacheStatsSchema>;
export type InvalidateBody = Static<typeof InvalidateBodySchema>;
export type ClearQuery = Static<typeof ClearQuerySchema>;
export type ProbeResponse = Static<typeof ProbeResponseSchema>;

// Compile-time guard: the schema and the core's CacheStats type must describe the same object.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _statsSchemaMatchesType: Same<CacheStatsResponse, CacheStats> = true;
const _categorySchemaMatchesType: Same<Static<typeof CategoryStatsSchema>, CategoryStats> = true;
void _statsSchemaMatchesType;
void _categorySchemaMatchesType;
