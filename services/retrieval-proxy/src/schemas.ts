import { ErrorResponse } from '@aicache/service-kit';
import { Type } from 'typebox';

export { ErrorResponse };

export const DOCUMENT_ID_PATTERN = '^[A-Za-z0-9._-]{1,128}$';
const KEY_PATTERN = '^[A-Za-z0-9._-]{1,64}$';

export const DocumentId = Type.String({ pattern: DOCUMENT_ID_PATTERN, minLength: 1, maxLength: 128, description: 'Slug [A-Za-z0-9._-]{1,128}' });

export const MetadataValue = Type.Union([
  Type.String({ maxLength: 1000 }),
  Type.Number(),
  Type.Boolean(),
  Type.Array(Type.String({ maxLength: 1000 }), { maxItems: 100 }),
]);

export const Metadata = Type.Record(Type.String({ pattern: KEY_PATTERN }), MetadataValue, {
  maxProperties: 50,
  additionalProperties: false,
  description: 'At most 50 keys matching [A-Za-z0-9._-]{1,64}; values string | number | boolean | string[]',
});

const FilterScalar = Type.Union([Type.String({ maxLength: 1000 }), Type.Number(), Type.Boolean()]);

export const Filters = Type.Record(
  Type.String({ pattern: KEY_PATTERN }),
  Type.Union([FilterScalar, Type.Array(FilterScalar, { minItems: 1, maxItems: 50 })]),
  {
    maxProperties: 20,
    additionalProperties: false,
    description:
      'Every key must match (AND). A value matches metadata by equality (type-sensitive); an array means any-of; ' +
      'a string[] metadata value matches when any element does. `documentId` and `source` filter on the document itself.',
  },
);

export const Query = Type.String({ minLength: 1, maxLength: 2000, description: 'Normalized (trimmed, lower-cased, whitespace collapsed) before embedding and caching' });
export const ScoreThreshold = Type.Number({ minimum: -1, maximum: 1, description: 'Minimum cosine similarity' });

export const Citation = Type.Object({
  documentId: Type.String(),
  title: Type.String(),
  source: Type.Optional(Type.String()),
  chunkIndex: Type.Integer(),
});
