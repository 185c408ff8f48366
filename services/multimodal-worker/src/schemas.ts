import { Type, type Static } from 'typebox';
import { ErrorResponse } from '@aicache/service-kit';

export { ErrorResponse };

export const MAX_INPUTS = 2048;
export const MAX_INPUT_CHARS = 32_768;
export const MAX_TEXT_BYTES = 2 * 1024 * 1024;
export const ModelId = Type.String({ minLength: 1, maxLength: 200, description: 'Model id; default: the worker\'s default model' });

export const ModelMetadataSchema = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal('model'),
    provider: Type.String(),
    dimensions: Type.Union([Type.Integer(), Type.Null()]),
    max_input_chars: Type.Integer(),
    description: Type.String(),
  },
  { description: 'Embedding model' },
);

export const ModelListSchema = Type.Object({
  object: Type.Literal('list'),
  data: Type.Array(ModelMetadataSchema),
});

export const ChunkSchema = Type.Object({
  index: Type.Integer({ description: 'Position of the chunk in the document' }),
  text: Type.String(),
  hash: Type.String({ description: 'sha256 (hex) of the chunk text; equal chunks share it and one embedding' }),
  start: Type.Integer({ description: 'Offset of the first character (UTF-16 code units, as JS string indices)' }),
  end: Type.Integer({ description: 'Offset just past the last character: text.slice(start, end) is the chunk' }),
  embedding: Type.Optional(Type.Array(Type.Number(), { description: 'Only with includeEmbeddings: true' })),
});

export const ProcessResultSchema = Type.Object({
  filename: Type.Union([Type.String(), Type.Null()]),
  mimeType: Type.Union([Type.String(), Type.Null()]),
  fileHash: Type.String({ description: 'sha256 (hex) of the UTF-8 text' }),
  bytes: Type.Integer(),
  chunkSize: Type.Integer(),
  chunkOverlap: Type.Integer(),
  chunks: Type.Array(ChunkSchema),
  chunkCount: Type.Integer(),
  uniqueChunks: Type.Integer(),
  model: Type.String(),
  dimensions: Type.Integer(),
});
export type ProcessResult = Static<typeof ProcessResultSchema>;
