/**
 * Vectors shaped like text embeddings without embedding text: a few `rank` directions carry most of the variance,
 * plus a little noise (uniform random vectors would make every neighbour equally far and no index look good or bad).
 * Seeded, so a run can be repeated.
 */
export function seededRandom(seed: number): () => number {
  // mulberry32
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `drawSeed`: the vectors drawn from the same `rank` directions (those of `seed`) by another sequence: queries in the
 * space of a corpus without repeating its vectors, and without drawing the corpus first.
 */
export function lowRankVectors(dims: number, rank: number, seed: number, drawSeed?: number): () => Float32Array {
  let random = seededRandom(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(random() || 1e-12)) * Math.cos(2 * Math.PI * random());
  const basis = Array.from({ length: rank }, () => Float32Array.from({ length: dims }, gauss));
  if (drawSeed !== undefined) random = seededRandom(drawSeed);
  return () => {
    const v = new Float32Array(dims);
    for (const b of basis) {
      const w = gauss();
      for (let i = 0; i < dims; i++) v[i]! += w * b[i]!;
    }
    for (let i = 0; i < dims; i++) v[i]! += 0.1 * gauss();
    return v;
  };
}

/** Gaussian draws from a uniform source (Box-Muller). */
function gaussian(random: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(random() || 1e-12)) * Math.cos(2 * Math.PI * random());
}

/** A seed for item `i` of stream `stream` under `seed` (different items, different sequences). */
function mix(seed: number, stream: number, i: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(stream + 1, 0xc2b2ae35) ^ Math.imul(i + 1, 0x27d4eb2f);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  return h | 0;
}

/**
 * The statistics of real text embeddings a corpus generator reproduces, as measured by `embedding-shape.ts` on the
 * labeled retrieval set embedded with local-use-512 (see EMBEDDING_SHAPE for the figures).
 * Variances are of an unnormalised draw whose expected squared length is 1; vectors are L2-normalised after.
 */
export interface EmbeddingShape {
  dims: number;
  /** Variance along rank k (1-based) of the centred embeddings decays as (k + spectrumKnee)^-spectrumDecay. */
  spectrumDecay: number;
  /** Ranks before the decay sets in (the first few directions are of similar weight). */
  spectrumKnee: number;
  /** Squared length of the mean every embedding shares (text embeddings are not centred): ~ cosine across topics. */
  meanShare: number;
  /** Variance between groups of related topics (with meanShare: ~ cosine across related topics). */
  groupShare: number;
  /** Variance between topic centres of a group (with meanShare and groupShare: ~ cosine within a topic). */
  topicShare: number;
  /** Variance of a passage around its topic's centre: 1 - meanShare - topicShare. */
  passageShare: number;
  /** Share of its passage's own deviation from the topic centre a query keeps (a query says less than the passage). */
  queryKeep: number;
  /** Variance of a query around that point (the same spectrum): with queryKeep, the query ↔ passage cosine. */
  queryShare: number;
  /** Consecutive chunks of the corpus on one topic (a document's chunks are about the same thing). */
  chunksPerTopic: number;
  /** Consecutive topics in a group of related ones. */
  topicsPerGroup: number;
}

/**
 * Measured on local-use-512 (Universal Sentence Encoder) over the 205 passages and 205 queries of
 * packages/e2e/test/fixtures/retrieval-eval.json: `node dist/embedding-shape.js` prints the measured figures beside the
 * ones a corpus of this shape gives.
 */
export const EMBEDDING_SHAPE: EmbeddingShape = {
  dims: 512,
  spectrumDecay: 2,
  spectrumKnee: 20,
  meanShare: 0.2,
  groupShare: 0.15,
  topicShare: 0.12,
  passageShare: 0.53,
  queryKeep: 0.4,
  queryShare: 1,
  chunksPerTopic: 5,
  topicsPerGroup: 8,
};

/**
 * A corpus shaped like text embeddings (EMBEDDING_SHAPE): topic centres around a shared mean, drawn from a decaying
 * spectrum; passages around their topic's centre; queries as perturbed passages. Chunk `i` is a pure function of
 * (`seed`, `i`), so the queries of a corpus of `size` chunks are drawn from its own passages without holding them.
 * Axes are the spectrum's own (a rotation changes no cosine, so nothing an index sees).
 */
export function embeddingLikeCorpus(seed: number, shape: EmbeddingShape = EMBEDDING_SHAPE) {
  const { dims } = shape;
  const scale = new Float32Array(dims);
  let total = 0;
  for (let k = 0; k < dims; k++) total += (scale[k] = (k + 1 + shape.spectrumKnee) ** -shape.spectrumDecay);
  for (let k = 0; k < dims; k++) scale[k] = Math.sqrt(scale[k]! / total);
  const g0 = gaussian(seededRandom(mix(seed, 0, 0)));
  const mean = Float32Array.from({ length: dims }, g0);
  const meanLen = Math.hypot(...mean);
  for (let k = 0; k < dims; k++) mean[k] = (mean[k]! / meanLen) * Math.sqrt(shape.meanShare);
  const addSpectral = (v: Float32Array, share: number, stream: number, i: number) => {
    const g = gaussian(seededRandom(mix(seed, stream, i)));
    const s = Math.sqrt(share);
    for (let k = 0; k < dims; k++) v[k]! += s * scale[k]! * g();
  };
  const normalise = (v: Float32Array) => {
    let n = 0;
    for (let k = 0; k < dims; k++) n += v[k]! * v[k]!;
    n = Math.sqrt(n);
    for (let k = 0; k < dims; k++) v[k]! /= n;
    return v;
  };
  let lastGroup = -1;
  let group = new Float32Array(dims);
  const groupCentre = (g: number): Float32Array => {
    if (g !== lastGroup) {
      group = Float32Array.from(mean);
      addSpectral(group, shape.groupShare, 4, g);
      lastGroup = g;
    }
    return group;
  };
  let lastTopic = -1;
  let centre = new Float32Array(dims);
  const topicCentre = (t: number): Float32Array => {
    if (t !== lastTopic) {
      centre = Float32Array.from(groupCentre(Math.floor(t / shape.topicsPerGroup)));
      addSpectral(centre, shape.topicShare, 1, t);
      lastTopic = t;
    }
    return centre;
  };
  const unnormalisedChunk = (i: number, keep = 1): Float32Array => {
    const v = Float32Array.from(topicCentre(Math.floor(i / shape.chunksPerTopic)));
    addSpectral(v, shape.passageShare * keep * keep, 2, i);
    return v;
  };
  return {
    dims,
    /** Chunk `i` of the corpus (unit length). */
    chunk: (i: number): Float32Array => normalise(unnormalisedChunk(i)),
    /** The query of chunk `i` (unit length): near it as a query is near the passage that answers it. */
    queryOf: (i: number, variant = 0): Float32Array => {
      const v = unnormalisedChunk(i, shape.queryKeep);
      addSpectral(v, shape.queryShare, 5 + variant, i);
      return normalise(v);
    },
    /** Chunks 0, 1, 2, ... in order. */
    stream(): () => Float32Array {
      let i = 0;
      return () => normalise(unnormalisedChunk(i++));
    },
    /** Queries of chunks drawn uniformly from the first `size` by the sequence `drawSeed`: which chunk, then its query. */
    queries(size: number, drawSeed: number): () => Float32Array {
      const random = seededRandom(drawSeed);
      let n = 0;
      return () => {
        const i = Math.floor(random() * size);
        const v = unnormalisedChunk(i, shape.queryKeep);
        addSpectral(v, shape.queryShare, 1000 + (drawSeed & 0xffff), n++);
        return normalise(v);
      };
    },
  };
}
