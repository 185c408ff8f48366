import { Type, type Static } from 'typebox';
import { Filters, Metadata } from './filters.js';

/** Longest query retrieval-proxy accepts, in characters. */
export const QUERY_MAX_LENGTH = 2000;
/** Most results (search) or sections (context) one request may ask for. */
export const RESULTS_MAX = 50;
export const CONTEXT_MAX_CHARS_MIN = 200;
export const CONTEXT_MAX_CHARS_MAX = 100_000;

export const Query = Type.String({
  minLength: 1,
  maxLength: QUERY_MAX_LENGTH,
  description: 'Normalized (NFKC, trimmed, lower-cased, whitespace collapsed) before embedding and caching',
});
export const ScoreThreshold = Type.Number({ minimum: -1, maximum: 1, description: 'Minimum cosine similarity' });

/** Where a passage comes from. `id` is the n of the `[n]` marker that cites it. */
export const Citation = Type.Object({
  id: Type.Integer({ minimum: 1, description: 'The n of the [n] marker that cites this passage (search: the rank)' }),
  documentId: Type.String(),
  title: Type.String(),
  source: Type.Optional(Type.String()),
  chunkIndex: Type.Integer({ minimum: 0 }),
});
export type Citation = Static<typeof Citation>;

export const SearchRequest = Type.Object(
  {
    query: Query,
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: RESULTS_MAX, default: 10 })),
    filters: Type.Optional(Filters),
    scoreThreshold: Type.Optional(ScoreThreshold),
    hybrid: Type.Optional(
      Type.Boolean({
        description:
          'Hybrid ranking: the vector ranking fused (Reciprocal Rank Fusion, k 60) with a PostgreSQL full-text ranking of the ' +
          'chunks holding every word of the query, read as a web search box reads it ("quoted phrase", `or`, `-word`), both ' +
          'through the same filters. Finds exact identifiers (error codes, ids, setting names) the embedding misses; results ' +
          'come in the fused order, each score still its cosine similarity. ' +
          'Default: the service setting RETRIEVAL_HYBRID (off unless set). pgvector engine only: 400 on the Redis engine.',
      }),
    ),
  },
  { additionalProperties: false },
);
export type SearchRequest = Static<typeof SearchRequest>;

export const SearchResult = Type.Object({
  documentId: Type.String(),
  chunkIndex: Type.Integer(),
  title: Type.String(),
  text: Type.String(),
  score: Type.Number({ description: 'Cosine similarity' }),
  metadata: Metadata,
  citation: Citation,
});
export type SearchResult = Static<typeof SearchResult>;

export const SearchResponse = Type.Object({
  query: Type.String({ description: 'The normalized query' }),
  results: Type.Array(SearchResult),
  total: Type.Integer({ description: 'Chunks that passed the filters and the threshold, before the limit' }),
});
export type SearchResponse = Static<typeof SearchResponse>;

/** A search request whose answer is one text for a prompt; fewer results by default. */
export const ContextRequest = Type.Object(
  {
    ...SearchRequest.properties,
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: RESULTS_MAX, default: 5 })),
    maxChars: Type.Optional(Type.Integer({ minimum: CONTEXT_MAX_CHARS_MIN, maximum: CONTEXT_MAX_CHARS_MAX, default: 4000 })),
  },
  { additionalProperties: false },
);
export type ContextRequest = Static<typeof ContextRequest>;

/** One passage of a context bundle with the citation that goes with it: nothing to pair up on the other side. */
export const ContextSection = Type.Object({
  citation: Citation,
  text: Type.String({ description: 'The passage as it appears in `text` after its [n] marker (cut with … when truncated)' }),
  score: Type.Number({ description: 'Cosine similarity' }),
});
export type ContextSection = Static<typeof ContextSection>;

export const ContextResponse = Type.Object({
  query: Type.String({ description: 'The normalized query' }),
  sections: Type.Array(ContextSection, { description: 'Best first; section i carries citation id i + 1' }),
  text: Type.String({ description: 'The sections joined by a blank line, each prefixed with [n]; at most maxChars characters' }),
  truncated: Type.Boolean({ description: 'A section was cut or left out to stay within maxChars' }),
});
export type ContextResponse = Static<typeof ContextResponse>;
