/**
 * The wire contract between the services, declared once. Each schema is used by both sides of a call:
 * the server validates and documents its route with it, the client builds its requests as its Static type,
 * validates its input with it before calling (so it never accepts what the server would refuse), and
 * checks the answer against it.
 */
export { ErrorResponse } from './errors.js';
export { KEY_PATTERN, Metadata, MetadataValue, Filters, FilterValue, FilterScalar } from './filters.js';
export {
  QUERY_MAX_LENGTH,
  RESULTS_MAX,
  CONTEXT_MAX_CHARS_MIN,
  CONTEXT_MAX_CHARS_MAX,
  Query,
  ScoreThreshold,
  Citation,
  SearchRequest,
  SearchResult,
  SearchResponse,
  ContextRequest,
  ContextSection,
  ContextResponse,
} from './retrieval.js';
export {
  EmbeddingModelId,
  EmbeddingInput,
  EncodingFormat,
  EmbeddingsRequest,
  EmbeddingItem,
  EmbeddingsResponse,
} from './embeddings.js';
