import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { textSha256 } from '@aicache/text';
import type { ModelRegistry } from '../providers/registry.js';
import type { EmbeddingProvider } from '../providers/types.js';
import { errors } from '@aicache/service-kit';
import { aboutParam, EmbeddingsProviderError } from '../errors.js';
import { MAX_BATCH_CHARS, MAX_INPUTS } from '../schemas.js';

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

/** `<model>:<sha256 of the input>`, hashed without loss (textSha256), so no two inputs share an entry. */
export function embeddingCacheKey(model: string, input: string): string {
  return `${model}:${textSha256(input)}`;
}

/**
 * The one cached embedding path (used by /embeddings and by file processing): each distinct input
 * is a cache entry `<model>:<sha256(input)>` holding a Float32Array; a batch of up to 2048 distinct
 * inputs is one MGET, one provider call for the misses, one MSET. Larger sets (the chunks of a long
 * text) go in slices of 2048, with the event loop free between them.
 */
export class EmbeddingService {
  constructor(
    private readonly registry: ModelRegistry,
    private readonly store: VectorStore,
    /** Appended to the 413 of a batch too large for one request: where larger work goes instead (a background job). */
    private readonly tooLargeHint = '',
  ) {}

  /**
   * One embeddings request: refuses a batch that asks for more work than one request may (413) before anything is
   * computed, and inputs or dimensions the model does not take (400, naming the field), then embeds.
   */
  async embedRequest(inputs: string[], opts: { model?: string | undefined; dimensions?: number | undefined } = {}): Promise<EmbedResult> {
    if (inputs.length > MAX_INPUTS) {
      throw aboutParam(new errors.BodyTooLarge(`input has ${inputs.length} items; one request takes at most ${MAX_INPUTS}: split the batch${this.tooLargeHint}`), 'input');
    }
    const chars = inputs.reduce((n, t) => n + t.length, 0);
    if (chars > MAX_BATCH_CHARS) {
      throw aboutParam(new errors.BodyTooLarge(`input has ${chars} characters in all; one request takes at most ${MAX_BATCH_CHARS}: split the batch${this.tooLargeHint}`), 'input');
    }
    const provider = this.registry.resolve(opts.model);
    const limit = provider.describe().max_input_chars;
    const tooLong = inputs.findIndex((t) => t.length > limit);
    if (tooLong >= 0) {
      throw aboutParam(new errors.BadRequest(`input[${tooLong}] has ${inputs[tooLong]!.length} characters; model '${provider.id}' accepts at most ${limit}`), 'input');
    }
    if (opts.dimensions !== undefined && provider.dimensions && opts.dimensions !== provider.dimensions) {
      throw aboutParam(new errors.BadRequest(`model '${provider.id}' has ${provider.dimensions} dimensions; dimensions=${opts.dimensions} is not supported`), 'dimensions');
    }
    return this.embed(inputs, { model: provider.id });
  }

  async embed(inputs: string[], opts: { model?: string; tags?: string[] } = {}): Promise<EmbedResult> {
    const provider = this.registry.resolve(opts.model);
    const distinct = [...new Set(inputs)];
    const byText = new Map<string, Float32Array>();
    let computed = 0;
    for (let from = 0; from < distinct.length; from += MAX_INPUTS) {
      if (from > 0) await yieldToLoop();
      computed += await this.embedSlice(provider, distinct.slice(from, from + MAX_INPUTS), byText, opts.tags);
    }

    const vectors = inputs.map((t) => byText.get(t)!);
    const hits = distinct.length - computed;
    return {
      model: provider.id,
      dimensions: provider.dimensions || (vectors[0]?.length ?? 0),
      vectors,
      cache: computed === 0 ? 'hit' : hits === 0 ? 'miss' : 'partial',
      computed,
    };
  }

  /** Fills byText for these distinct texts from the cache and the provider; answers how many the provider computed. */
  private async embedSlice(provider: EmbeddingProvider, texts: string[], byText: Map<string, Float32Array>, tags: string[] | undefined): Promise<number> {
    const keys = texts.map((t) => embeddingCacheKey(provider.id, t));
    const cached = texts.length ? await this.store.mget<Float32Array>(keys) : [];
    const missing: number[] = [];
    texts.forEach((text, i) => {
      const v = cached[i];
      if (usable(v, provider)) byText.set(text, v);
      else missing.push(i);
    });
    if (!missing.length) return 0;

    const misses = missing.map((i) => texts[i]!);
    const fresh = await provider.embed(misses);
    if (fresh.length !== misses.length) {
      throw new EmbeddingsProviderError(provider.id, `returned ${fresh.length} vectors for ${misses.length} inputs`);
    }
    misses.forEach((t, j) => byText.set(t, fresh[j]!));
    // A failed write only costs a recomputation later; the cache library logs it.
    await this.store.mset(missing.map((i, j) => ({ key: keys[i]!, value: fresh[j]!, ...(tags?.length ? { tags } : {}) })));
    return missing.length;
  }
}

function usable(v: unknown, provider: EmbeddingProvider): v is Float32Array {
  if (!(v instanceof Float32Array) || v.length === 0) return false;
  // An entry of another length (provider reconfigured under the same model id) is recomputed, not served.
  return provider.dimensions === 0 || v.length === provider.dimensions;
}
