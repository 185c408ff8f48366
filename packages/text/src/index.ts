export {
  chunkText,
  chunkTextAsync,
  iterateChunks,
  checkChunkOptions,
  defaultChunkOverlap,
  maxChunkOverlap,
  ChunkLimitError,
  DEFAULT_OVERLAP_RATIO,
  type Chunk,
  type ChunkOptions,
  type AsyncChunkOptions,
} from './chunker.js';
export { textSha256 } from './hash.js';
