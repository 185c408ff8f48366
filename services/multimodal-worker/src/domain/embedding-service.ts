import type { ModelRegistry } from '../providers/registry.js';
import type { EmbeddingProvider } from '../providers/types.js';
import { EmbeddingsProviderError } from '../errors.js';
import { sha256Hex } from './hash.js';

/** The part of a cache category this service needs (structurally a @aicache/cache CategoryCache). */
export interface VectorStore {
  mget<V = unknown>(keys: string[]): Promise<Array<V | undefined>>;
  mset<V = unknown>(entries: Array<{ key: string; value: V; ttl?: number; tags?: string[] }>): Promise<boolean>;
}

export type CacheOutcome = 'hit' | 'partial' | 'miss';

export interface EmbedResult {
  model: string;
  dimensions: number;
  /** One vector per input, in input order (duplicates share one array). */
  vectors: Float32Array[];
  /** hit: every distinct input came from the cache; miss: none did. */
  cache: CacheOutcome;
  /** Distinct inputs that had to be computed by the provider. */
  computed: number;
}

export function embeddingCacheKey(model: string, input: string): string {
  return `${model}:${sha256Hex(input)}`;
}

/**
 * The one cached embedding path (used by /embeddings and by file processing): each distinct input
 * is a cache entry `<model>:<sha256(input)>` holding a Float32Array; a batch is one MGET, one
 * provider call for the misses, one MSET.
 */
export class EmbeddingService {
  constructor(
    private readonly registry: ModelRegistry,
    private readonly store: VectorStore,
  ) {}

  async embed(inputs: string[], opts: { model?: string; tags?: string[] } = {}): Promise<EmbedResult> {
    const provider = this.registry.resolve(opts.model);
    const distinct = [...new Set(inputs)];
    const keys = distinct.map((t) => embeddingCacheKey(provider.id, t));
    const cached = distinct.length ? await this.store.mget<Float32Array>(keys) : [];

    const byText = new Map<string, Float32Array>();
    const missing: number[] = [];
    distinct.forEach((text, i) => {
      const v = cached[i];
      if (usable(v, provider)) byText.set(text, v);
      else missing.push(i);
    });

    if (missing.length) {
      const texts = missing.map((i) => distinct[i]!);
      const fresh = await provider.embed(texts);
      if (fresh.length !== texts.length) {
        throw new EmbeddingsProviderError(provider.id, `returned ${fresh.length} vectors for ${texts.length} inputs`);
      }
      texts.forEach((t, j) => byText.set(t, fresh[j]!));
      // A failed write only costs a recomputation later; the cache library logs it.
      await this.store.mset(
        missing.map((i, j) => ({ key: keys[i]!, value: fresh[j]!, ...(opts.tags?.length ? { tags: opts.tags } : {}) })),
      );
    }

    const vectors = inputs.map((t) => byText.get(t)!);
    const hits = distinct.length - missing.length;
    return {
      model: provider.id,
      dimensions: provider.dimensions || (vectors[0]?.length ?? 0),
      vectors,
      cache: missing.length === 0 ? 'hit' : hits === 0 ? 'miss' : 'partial',
      computed: missing.length,
    };
  }
}

function usable(v: unknown, provider: EmbeddingProvider): v is Float32Array {
  if (!(v instanceof Float32Array) || v.length === 0) return false;
  // An entry of another length (provider reconfigured under the same model id) is recomputed, not served.
  return provider.dimensions === 0 || v.length === provider.dimensions;
}
