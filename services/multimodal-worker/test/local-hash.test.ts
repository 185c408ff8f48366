import { describe, expect, it } from 'vitest';
import { hashEmbed, LocalHashProvider, LOCAL_HASH_DIMENSIONS } from '../src/providers/local-hash.js';

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i]! * b[i]!;
  return dot;
}

function norm(v: Float32Array): number {
  return Math.sqrt(cosine(v, v));
}

describe('local-hash-384 embedder', () => {
  it('gives the same unit-length 384-dim vector for the same text, every time', async () => {
    const p = new LocalHashProvider();
    const [a, b] = await p.embed(['Redis caches embeddings for a day', 'Redis caches embeddings for a day']);
    expect(a).toHaveLength(LOCAL_HASH_DIMENSIONS);
    expect(Array.from(a!)).toEqual(Array.from(b!));
    expect(norm(a!)).toBeCloseTo(1, 5);
    // A fresh instance (another process) agrees: nothing random, nothing learned.
    expect(Array.from(hashEmbed('Redis caches embeddings for a day'))).toEqual(Array.from(a!));
  });

  it('is case-insensitive and ignores punctuation between words', () => {
    expect(cosine(hashEmbed('Hello, World!'), hashEmbed('hello world'))).toBeCloseTo(1, 5);
  });

  it('scores texts that share words above texts that share none', () => {
    const q = hashEmbed('how do I invalidate the redis cache for one file');
    const related = hashEmbed('invalidate a file in the redis cache by its hash');
    const unrelated = hashEmbed('the orchestra played a symphony by Brahms last night');
    expect(cosine(q, related)).toBeGreaterThan(cosine(q, unrelated) + 0.2);
  });

  it('sees inflections through character trigrams', () => {
    const base = hashEmbed('caching');
    expect(cosine(base, hashEmbed('cached'))).toBeGreaterThan(cosine(base, hashEmbed('orchestra')));
  });

  it('does not know synonyms: lexical overlap only', () => {
    // Documented limitation: "car" and "automobile" share no words or trigrams.
    expect(Math.abs(cosine(hashEmbed('car'), hashEmbed('automobile')))).toBeLessThan(0.3);
  });

  it('word order matters only through adjacent pairs', () => {
    const a = hashEmbed('dog bites man');
    const b = hashEmbed('man bites dog');
    const s = cosine(a, b);
    expect(s).toBeLessThan(0.999);
    expect(s).toBeGreaterThan(0.5);
  });

  it('gives a non-zero unit vector for text without letters or digits', () => {
    for (const t of ['!!!', '   ', '—']) {
      const v = hashEmbed(t);
      expect(norm(v)).toBeCloseTo(1, 5);
      expect(v.every((x) => Number.isFinite(x))).toBe(true);
    }
    expect(Array.from(hashEmbed('!!!'))).not.toEqual(Array.from(hashEmbed('???')));
  });

  it('handles non-Latin scripts', () => {
    const a = hashEmbed('Кэширование эмбеддингов в Redis');
    const b = hashEmbed('эмбеддингов кэширование');
    expect(norm(a)).toBeCloseTo(1, 5);
    expect(cosine(a, b)).toBeGreaterThan(0.4);
  });
});
