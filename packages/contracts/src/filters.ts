import { Type, type Static } from 'typebox';

/** Metadata keys and filter keys: what a key may look like, everywhere. */
export const KEY_PATTERN = '^[A-Za-z0-9._-]{1,64}$';

export const MetadataValue = Type.Union([
  Type.String({ maxLength: 1000 }),
  Type.Number(),
  Type.Boolean(),
  Type.Array(Type.String({ maxLength: 1000 }), { maxItems: 100 }),
]);
export type MetadataValue = Static<typeof MetadataValue>;

export const Metadata = Type.Record(Type.String({ pattern: KEY_PATTERN }), MetadataValue, {
  maxProperties: 50,
  additionalProperties: false,
  description: 'At most 50 keys matching [A-Za-z0-9._-]{1,64}; values string | number | boolean | string[]',
});
export type Metadata = Static<typeof Metadata>;

export const FilterScalar = Type.Union([Type.String({ maxLength: 1000 }), Type.Number(), Type.Boolean()]);
export type FilterScalar = Static<typeof FilterScalar>;

export const FilterValue = Type.Union([FilterScalar, Type.Array(FilterScalar, { minItems: 1, maxItems: 50 })]);
export type FilterValue = Static<typeof FilterValue>;

export const Filters = Type.Record(Type.String({ pattern: KEY_PATTERN }), FilterValue, {
  maxProperties: 20,
  additionalProperties: false,
  description:
    'Keys match [A-Za-z0-9._-]{1,64}, at most 20. Every key must match (AND). A value matches metadata by equality ' +
    '(type-sensitive); a non-empty array of at most 50 means any-of; a string[] metadata value matches when any element ' +
    'does. `documentId` and `source` filter on the document itself.',
});
export type Filters = Static<typeof Filters>;
