/** A retrieval-proxy style search answer of about 2 KB, the shape the HTTP and library rows cache. */
export interface SearchResult {
  documentId: string;
  chunkIndex: number;
  title: string;
  text: string;
  score: number;
  metadata: { source: string; lang: string; page: number };
  citation: { documentId: string; title: string; source: string; chunkIndex: number };
}
export interface SearchAnswer {
  query: string;
  results: SearchResult[];
  total: number;
}

const LOREM =
  'Redis keeps the hot working set in memory, so a cached answer costs one round trip instead of a model call; ' +
  'the cache stores the serialized bytes and replays them as they are. ';

export function makeSearchAnswer(targetBytes = 2048): SearchAnswer {
  const answer: SearchAnswer = { query: 'how does the cache replay stored responses', results: [], total: 0 };
  for (let i = 0; JSON.stringify(answer).length < targetBytes; i++) {
    const documentId = `doc-${1000 + i}`;
    const title = `Caching guide, part ${i + 1}`;
    answer.results.push({
      documentId,
      chunkIndex: i,
      title,
      text: LOREM.slice(0, 180 + ((i * 37) % 60)),
      score: Math.round((0.95 - i * 0.03) * 1e4) / 1e4,
      metadata: { source: 'handbook', lang: 'en', page: 10 + i },
      citation: { documentId, title, source: 'handbook', chunkIndex: i },
    });
    answer.total = answer.results.length;
  }
  return answer;
}

/** JSON schema of SearchAnswer, so the uncached route is serialized by Fastify's compiled serializer. */
export const searchAnswerSchema = {
  type: 'object',
  properties: {
    query: { type: 'string' },
    total: { type: 'integer' },
    results: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          documentId: { type: 'string' },
          chunkIndex: { type: 'integer' },
          title: { type: 'string' },
          text: { type: 'string' },
          score: { type: 'number' },
          metadata: {
            type: 'object',
            properties: { source: { type: 'string' }, lang: { type: 'string' }, page: { type: 'integer' } },
          },
          citation: {
            type: 'object',
            properties: {
              documentId: { type: 'string' },
              title: { type: 'string' },
              source: { type: 'string' },
              chunkIndex: { type: 'integer' },
            },
          },
        },
      },
    },
  },
} as const;

/** A deterministic unit-length embedding (xorshift), so every run stores the same bytes. */
export function makeEmbedding(dims: number, seed: number): Float32Array {
  const v = new Float32Array(dims);
  let x = (seed * 2654435761) >>> 0 || 1;
  let norm = 0;
  for (let i = 0; i < dims; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    const f = x / 0xffffffff - 0.5;
    v[i] = f;
    norm += f * f;
  }
  const inv = 1 / Math.sqrt(norm);
  for (let i = 0; i < dims; i++) v[i] = v[i]! * inv;
  return v;
}
