import { CHARS_PER_SLICE, WorkBudget } from '../domain/work-budget.js';
import type { EmbeddingProvider, ModelMetadata } from './types.js';

export const LOCAL_HASH_MODEL_ID = 'local-hash-384';
export const LOCAL_HASH_DIMENSIONS = 384;
export const LOCAL_MAX_INPUT_CHARS = 32_768;
/** When this embedder's algorithm was fixed (2026-11-27): its vectors have not changed since. */
export const LOCAL_HASH_CREATED = 1_795_737_600;

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
// Distinct seeds keep a word, a bigram and a trigram that spell the same characters apart.
const SEED_WORD = fnvString(FNV_OFFSET, 'w');
const SEED_BIGRAM = fnvString(FNV_OFFSET, 'b');
const SEED_TRIGRAM = fnvString(FNV_OFFSET, 'c');
const SEED_FALLBACK = fnvString(FNV_OFFSET, 'f');

const WEIGHT_WORD = 1.0;
const WEIGHT_BIGRAM = 0.7;
const WEIGHT_TRIGRAM = 0.35;

// Letters/digits, keeping in-word apostrophes ("don't" stays one word).
const WORD_RE = /[\p{L}\p{N}]+(?:['’][\p{L}\p{N}]+)*/gu;

function fnvString(seed: number, s: string): number {
  let h = seed;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, FNV_PRIME);
  }
  return h >>> 0;
}

function fnvRange(seed: number, s: string, from: number, to: number): number {
  let h = seed;
  for (let i = from; i < to; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, FNV_PRIME);
  }
  return h >>> 0;
}

/** murmur3 finalizer: an independent-looking bit for the sign, so bucket and sign are not correlated. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function count(map: Map<number, number>, h: number): void {
  map.set(h, (map.get(h) ?? 0) + 1);
}

function addFeatures(vec: Float64Array, counts: Map<number, number>, weight: number): void {
  const dims = vec.length;
  for (const [h, tf] of counts) {
    const bucket = h % dims;
    const sign = fmix32(h) & 1 ? 1 : -1;
    vec[bucket]! += sign * weight * (1 + Math.log(tf));
  }
}

/**
 * Deterministic feature-hashing embedding of one text (exported for tests and benchmarks).
 *
 * Features: lower-cased (NFKC) word unigrams, word bigrams and character trigrams of each word
 * (with word-boundary markers), hashed with FNV-1a into `dims` signed buckets, weighted by
 * sublinear term frequency (1 + ln tf) and L2-normalized, so cosine similarity = dot product.
 *
 * What it captures: LEXICAL overlap — texts that share words, word pairs and character n-grams
 * (including inflections like "cache"/"caching") score high. It does NOT capture meaning:
 * synonyms or paraphrases with different words ("car" vs "automobile") score near zero, and word
 * order beyond adjacent pairs is ignored. It needs no network, no model weights, and gives the
 * same vector for the same text on every machine. Use an OpenAI-compatible provider for semantics.
 */
export function hashEmbed(text: string, dims = LOCAL_HASH_DIMENSIONS): Float32Array {
  const lower = text.normalize('NFKC').toLowerCase();
  const words = lower.match(WORD_RE) ?? [];
  const unigrams = new Map<number, number>();
  const bigrams = new Map<number, number>();
  const trigrams = new Map<number, number>();

  let prevHash = -1;
  for (const word of words) {
    count(unigrams, fnvString(SEED_WORD, word));
    if (prevHash >= 0) {
      // Bigram hash = FNV continued from the previous word's bigram-seeded hash, a separator, then this word.
      count(bigrams, fnvString(fnvString(prevHash, ' '), word));
    }
    prevHash = fnvString(SEED_BIGRAM, word);
    const padded = `\u0002${word}\u0003`;
    for (let i = 0; i + 3 <= padded.length; i++) count(trigrams, fnvRange(SEED_TRIGRAM, padded, i, i + 3));
  }

  const acc = new Float64Array(dims);
  addFeatures(acc, unigrams, WEIGHT_WORD);
  addFeatures(acc, bigrams, WEIGHT_BIGRAM);
  addFeatures(acc, trigrams, WEIGHT_TRIGRAM);

  let norm = 0;
  for (let i = 0; i < dims; i++) norm += acc[i]! * acc[i]!;
  if (norm === 0) {
    // No letters or digits (e.g. "!!!" or whitespace): one feature for the exact text, so the vector is still unit length.
    const h = fnvString(SEED_FALLBACK, lower);
    acc[h % dims] = fmix32(h) & 1 ? 1 : -1;
    norm = 1;
  }
  const inv = 1 / Math.sqrt(norm);
  const out = new Float32Array(dims);
  for (let i = 0; i < dims; i++) out[i] = acc[i]! * inv;
  return out;
}

/** The built-in default model: feature hashing, no network. See hashEmbed for what it can and cannot tell apart. */
export class LocalHashProvider implements EmbeddingProvider {
  readonly id = LOCAL_HASH_MODEL_ID;
  readonly dimensions = LOCAL_HASH_DIMENSIONS;

  async embed(texts: string[]): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    // Yields between slices so a 2048-input batch does not stall other requests.
    const budget = new WorkBudget(CHARS_PER_SLICE);
    for (const text of texts) {
      out.push(hashEmbed(text, this.dimensions));
      await budget.spend(text.length);
    }
    return out;
  }

  describe(): ModelMetadata {
    return {
      id: this.id,
      object: 'model',
      created: LOCAL_HASH_CREATED,
      owned_by: 'ai-cache-stack',
      provider: 'local',
      dimensions: this.dimensions,
      max_input_chars: LOCAL_MAX_INPUT_CHARS,
      description:
        'Built-in deterministic feature-hashing embedder (word unigrams, word bigrams and character trigrams into 384 signed buckets, ' +
        'sublinear tf, L2-normalized). Measures lexical overlap, not meaning: synonyms score low. No network, no model weights.',
    };
  }
}
