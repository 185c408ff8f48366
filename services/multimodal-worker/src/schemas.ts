import { Type, type Static } from 'typebox';
import { EmbeddingModelId } from '@aicache/contracts';

// What one request may ask for (README, "multimodal-worker: limits"); past these the answer is 413.
/** Inputs in one embeddings batch. */
export const MAX_INPUTS = 2048;
/** Characters (UTF-16 code units) of one input; a 400 past it, as it is the model's input limit. */
export const MAX_INPUT_CHARS = 32_768;
/** Characters of all the inputs of one embeddings batch: twice a 1 MiB document chunked with the largest overlap. */
export const MAX_BATCH_CHARS = 4 * 1024 * 1024;
/** UTF-8 bytes of one text to process. */
export const MAX_TEXT_BYTES = 2 * 1024 * 1024;
/** Chunks one process request may make. */
export const MAX_PROCESS_CHUNKS = 8192;
/** Chunks one process answer may carry embeddings for: as many vectors as one embeddings answer holds. */
export const MAX_EMBEDDED_CHUNKS = MAX_INPUTS;
export const ModelId = EmbeddingModelId;

export const ModelMetadataSchema = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal('model'),
    created: Type.Integer({ description: 'Unix time (seconds) the model was published; 0 when its server does not say' }),
    owned_by: Type.String({ description: 'Who publishes the model' }),
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
  hash: Type.String({ description: 'sha256 (hex) of the chunk text (as fileHash); equal chunks share it and one embedding' }),
  start: Type.Integer({ description: 'Offset of the first character (UTF-16 code units, as JS string indices)' }),
  end: Type.Integer({ description: 'Offset just past the last character: text.slice(start, end) is the chunk' }),
  embedding: Type.Optional(Type.Array(Type.Number(), { description: 'Only with includeEmbeddings: true' })),
});

export const ProcessResultSchema = Type.Object({
  filename: Type.Union([Type.String(), Type.Null()]),
  mimeType: Type.Union([Type.String(), Type.Null()]),
  fileHash: Type.String({
    description: 'sha256 (hex) of the text\'s UTF-8 bytes; a lone surrogate (possible in JSON text, never in an upload) counts as its 3-byte WTF-8 form, so no two texts share a hash',
  }),
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
