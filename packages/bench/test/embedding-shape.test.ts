import { describe, expect, it } from 'vitest';
import { generatedStats, measuredStats } from '../src/embedding-shape.js';
import { EMBEDDING_SHAPE, embeddingLikeCorpus } from '../src/synthetic.js';

/**
 * The benchmark's embedding-like corpus against the embeddings it stands for: local-use-512 over the labeled
 * retrieval set, embedded here (the real model), and the same statistics of a generated set of the same size.
 */
describe('embedding-like corpus', () => {
  it('is a pure function of (seed, chunk): the stream, chunk(i) and a second corpus agree; unit vectors of 512 dimensions', () => {
    const a = embeddingLikeCorpus(7);
    const b = embeddingLikeCorpus(7);
    const stream = a.stream();
    for (let i = 0; i < 12; i++) {
      const v = stream();
      expect(v.length).toBe(EMBEDDING_SHAPE.dims);
      expect(Array.from(b.chunk(i))).toEqual(Array.from(v));
      expect(Math.hypot(...v)).toBeCloseTo(1, 5);
    }
    expect(Array.from(embeddingLikeCorpus(8).chunk(0))).not.toEqual(Array.from(a.chunk(0)));
    // A query sits near its own chunk, closer than a chunk of another group is.
    const q = a.queryOf(3);
    const cos = (x: Float32Array, y: Float32Array) => x.reduce((s, xi, i) => s + xi * y[i]!, 0);
    expect(cos(q, a.chunk(3))).toBeGreaterThan(cos(q, a.chunk(EMBEDDING_SHAPE.chunksPerTopic * EMBEDDING_SHAPE.topicsPerGroup * 3)));
  });

  it('reproduces the measured spectrum, topic structure and query placement of local-use-512 on the labeled set', async () => {
    const real = await measuredStats();
    const gen = [1, 2, 3].map((s) => generatedStats(s));
    const mean = (f: (s: typeof real) => number) => gen.reduce((x, s) => x + f(s), 0) / gen.length;
    for (const k of [4, 16, 64]) expect(Math.abs(mean((s) => s.top[k]!) - real.top[k]!), `variance in top ${k} ranks`).toBeLessThan(0.05);
    expect(Math.abs(mean((s) => s.slope) - real.slope)).toBeLessThan(0.15);
    expect(Math.abs(mean((s) => s.meanLength) - real.meanLength)).toBeLessThan(0.05);
    expect(Math.abs(mean((s) => s.cosWithinTopic) - real.cosWithinTopic)).toBeLessThan(0.05);
    expect(Math.abs(mean((s) => s.cosAcrossTopics) - real.cosAcrossTopics)).toBeLessThan(0.05);
    expect(Math.abs(mean((s) => s.cosQueryRelevant) - real.cosQueryRelevant)).toBeLessThan(0.05);
    expect(Math.abs(mean((s) => s.cosQueryNearestOther) - real.cosQueryNearestOther)).toBeLessThan(0.05);
    expect(Math.abs(mean((s) => s.queryHitAt1) - real.queryHitAt1)).toBeLessThan(0.1);
  }, 120_000);
});
