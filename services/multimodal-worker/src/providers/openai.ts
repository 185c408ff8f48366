import { Agent, request } from 'undici';
import { classifyNetworkError, isUnavailable } from '@aicache/service-kit';
import { EmbeddingsProviderError, EmbeddingsProviderUnavailable } from '../errors.js';
import type { EmbeddingProvider, ModelMetadata } from './types.js';

export interface OpenAIProviderOptions {
  /** e.g. https://api.openai.com/v1, http://ollama:11434/v1; `/embeddings` and `/models/<id>` are appended. */
  baseUrl: string;
  model: string;
  /** Sent as `Authorization: Bearer <key>`; never logged. */
  apiKey?: string;
  /** Expected vector length; answers of another length are rejected. Unset: learned from the first answer. */
  dimensions?: number;
  /** Inputs per upstream request. */
  batchSize: number;
  timeoutMs: number;
  maxInputChars: number;
}

const MAX_ERROR_DETAIL = 300;

/** The base URL without any user:password part, for messages and metadata. */
function publicUrl(base: string): string {
  try {
    const u = new URL(base);
    u.username = '';
    u.password = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '(invalid URL)';
  }
}

/** host[:port] of the base URL, never its credentials. */
function publicHost(base: string): string {
  try {
    return new URL(base).host || 'unknown';
  } catch {
    return 'unknown';
  }
}

function upstreamMessage(text: string): string {
  try {
    const parsed = JSON.parse(text) as { error?: { message?: unknown } | string; message?: unknown };
    const e = parsed.error;
    if (typeof e === 'string') return e.slice(0, MAX_ERROR_DETAIL);
    if (e && typeof e.message === 'string') return e.message.slice(0, MAX_ERROR_DETAIL);
    if (typeof parsed.message === 'string') return parsed.message.slice(0, MAX_ERROR_DETAIL);
  } catch {
    // not JSON: fall through to the raw text
  }
  return text.slice(0, MAX_ERROR_DETAIL);
}

/**
 * Any server that speaks the OpenAI embeddings API: OpenAI, Ollama's /v1, vLLM, Hugging Face TEI's
 * OpenAI route, LiteLLM... Misses are sent in batches of `batchSize`; every answer is checked
 * (count, index order, vector length, finite numbers) before anything is cached.
 */
export class OpenAIEmbeddingProvider implements EmbeddingProvider {
  readonly id: string;
  private readonly base: string;
  private readonly apiKey: string | undefined;
  private readonly batchSize: number;
  private readonly timeoutMs: number;
  private readonly maxInputChars: number;
  private readonly agent: Agent;
  private dims: number;
  private readonly configuredDims: boolean;

  constructor(opts: OpenAIProviderOptions) {
    this.id = opts.model;
    this.base = opts.baseUrl.replace(/\/+$/, '');
    this.apiKey = opts.apiKey || undefined;
    this.batchSize = Math.max(1, opts.batchSize);
    this.timeoutMs = opts.timeoutMs;
    this.maxInputChars = opts.maxInputChars;
    this.dims = opts.dimensions ?? 0;
    this.configuredDims = opts.dimensions !== undefined;
    this.agent = new Agent({ connect: { timeout: opts.timeoutMs }, headersTimeout: opts.timeoutMs, bodyTimeout: opts.timeoutMs });
  }

  get dimensions(): number {
    return this.dims;
  }

  private headers(json: boolean): Record<string, string> {
    const h: Record<string, string> = { accept: 'application/json' };
    if (json) h['content-type'] = 'application/json';
    if (this.apiKey) h.authorization = `Bearer ${this.apiKey}`;
    return h;
  }

  private async call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; text: string }> {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    try {
      const res = await request(`${this.base}${path}`, {
        method,
        headers: this.headers(body !== undefined),
        body: body === undefined ? undefined : JSON.stringify(body),
        dispatcher: this.agent,
        signal: timeout,
      });
      return { status: res.statusCode, text: await res.body.text() };
    } catch (err) {
      const failure = classifyNetworkError(err, { timeoutMs: this.timeoutMs, timedOut: timeout.aborted });
      if (isUnavailable(failure)) throw new EmbeddingsProviderUnavailable(this.id, failure.detail);
      throw new EmbeddingsProviderError(this.id, failure.detail);
    }
  }

  async embed(texts: string[]): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    for (let i = 0; i < texts.length; i += this.batchSize) {
      out.push(...(await this.embedBatch(texts.slice(i, i + this.batchSize))));
    }
    return out;
  }

  private async embedBatch(batch: string[]): Promise<Float32Array[]> {
    const { status, text } = await this.call('POST', '/embeddings', { model: this.id, input: batch });
    if (status === 429 || status === 502 || status === 503 || status === 504) {
      throw new EmbeddingsProviderUnavailable(this.id, `HTTP ${status}: ${upstreamMessage(text)}`);
    }
    if (status < 200 || status >= 300) {
      throw new EmbeddingsProviderError(this.id, `HTTP ${status}: ${upstreamMessage(text)}`);
    }
    return this.parse(text, batch.length);
  }

  private parse(text: string, expected: number): Float32Array[] {
    const bad = (why: string) => new EmbeddingsProviderError(this.id, `malformed response: ${why}`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw bad('not JSON');
    }
    const data = (parsed as { data?: unknown } | null)?.data;
    if (!Array.isArray(data)) throw bad('no data array');
    if (data.length !== expected) throw bad(`expected ${expected} embeddings, got ${data.length}`);

    const out = new Array<Float32Array | undefined>(expected);
    let dims = this.dims;
    data.forEach((item: unknown, pos) => {
      const { index, embedding } = (item ?? {}) as { index?: unknown; embedding?: unknown };
      // OpenAI always sends index; some compatible servers omit it and rely on order.
      const idx = index === undefined ? pos : index;
      if (typeof idx !== 'number' || !Number.isInteger(idx) || idx < 0 || idx >= expected) throw bad(`bad index ${String(idx)}`);
      if (out[idx]) throw bad(`duplicate index ${idx}`);
      if (!Array.isArray(embedding) || embedding.length === 0) throw bad(`item ${idx} has no embedding array`);
      if (dims === 0) dims = embedding.length;
      if (embedding.length !== dims) throw bad(`item ${idx} has ${embedding.length} dimensions, expected ${dims}`);
      const vec = new Float32Array(dims);
      for (let j = 0; j < dims; j++) {
        const v = embedding[j] as unknown;
        if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(`item ${idx} has a non-numeric value`);
        vec[j] = v;
      }
      out[idx] = vec;
    });
    if (!this.configuredDims) this.dims = dims;
    return out as Float32Array[];
  }

  describe(): ModelMetadata {
    return {
      id: this.id,
      object: 'model',
      // Until its server says otherwise (loadMetadata): unknown date, published by whoever serves it.
      created: 0,
      owned_by: publicHost(this.base),
      provider: 'openai',
      dimensions: this.dims || null,
      max_input_chars: this.maxInputChars,
      description: `OpenAI-compatible embeddings model '${this.id}' served at ${publicUrl(this.base)}`,
    };
  }

  /**
   * Asks `${base}/models/<id>` whether the model exists (owner goes into the description) and, when the
   * vector length is not configured, embeds one short probe text to learn it. Throws when the length
   * stays unknown, so callers do not cache metadata without dimensions.
   */
  async loadMetadata(): Promise<ModelMetadata> {
    const meta = this.describe();
    try {
      const { status, text } = await this.call('GET', `/models/${encodeURIComponent(this.id)}`);
      if (status >= 200 && status < 300) {
        const { owned_by: owner, created } = JSON.parse(text) as { owned_by?: unknown; created?: unknown };
        if (typeof owner === 'string' && owner) {
          meta.owned_by = owner.slice(0, 100);
          meta.description += ` (owned by ${meta.owned_by})`;
        }
        if (typeof created === 'number' && Number.isSafeInteger(created) && created >= 0) meta.created = created;
      }
    } catch {
      // Many compatible servers have no /models/<id>; configuration is enough.
    }
    if (!this.dims) await this.embed(['dimension probe']);
    meta.dimensions = this.dims;
    return meta;
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}
