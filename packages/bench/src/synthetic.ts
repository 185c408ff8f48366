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
