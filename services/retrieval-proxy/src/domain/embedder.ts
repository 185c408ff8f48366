import { EmbeddingsResponse, type EmbeddingsRequest } from '@aicache/contracts';
import { PeerClient, errors } from '@aicache/service-kit';
import { Compile } from 'typebox/compile';
import { base64ToVector } from './vectors.js';

export const WORKER_PEER = 'multimodal-worker';

export interface Embeddings {
  model: string;
  /** One vector per input, in input order. */
  vectors: Float32Array[];
}

export interface EmbedOptions {
  requestId?: string;
  timeoutMs?: number;
  headers?: Record<string, string>;
  model?: string;
}

/** What the routes need from the worker; tests may hand in their own. */
export interface Embedder {
  /**
   * `headers`: what proves to the worker whom the call acts for (a service token), sent as they are. `model`: the
   * model to ask for instead of the embedder's own ('' or absent = its own).
   */
  embed(inputs: string[], opts?: EmbedOptions): Promise<Embeddings>;
  ready(): Promise<boolean>;
  close(): Promise<void>;
}

const embeddingsAnswer = Compile(EmbeddingsResponse);

function malformed(detail: string) {
  return errors.PeerError(WORKER_PEER, 200, `malformed embeddings answer: ${detail}`);
}

/**
 * Checks the worker's answer against the contract and turns it into vectors; accepts base64 float32 and plain
 * number arrays, as the contract does.
 */
export function decodeEmbeddings(res: unknown, expected: number): Embeddings {
  if (!embeddingsAnswer.Check(res)) {
    const first = embeddingsAnswer.Errors(res)[0];
    throw malformed(first ? `${first.instancePath || '/'} ${first.message}` : 'does not match the contract');
  }
  if (res.data.length !== expected) throw malformed(`${res.data.length} embeddings for ${expected} inputs`);
  const vectors: Array<Float32Array | undefined> = new Array(expected);
  for (const item of res.data) {
    const index = item.index;
    if (index >= expected || vectors[index]) throw malformed(`bad index ${index}`);
    const e = item.embedding;
    let v: Float32Array;
    if (typeof e === 'string') v = base64ToVector(e);
    else if (e.every((x) => Number.isFinite(x))) v = Float32Array.from(e);
    else throw malformed(`embedding ${index} has a number that is not finite`);
    if (v.length === 0) throw malformed(`embedding ${index} is empty`);
    vectors[index] = v;
  }
  const dims = vectors[0]?.length;
  if (vectors.some((v) => v === undefined || v.length !== dims)) throw malformed('embeddings differ in dimension');
  return { model: res.model, vectors: vectors as Float32Array[] };
}

/** The multimodal-worker through the kit's PeerClient (timeouts, retries, x-request-id forwarding). */
export class WorkerEmbedder implements Embedder {
  private readonly client: PeerClient;

  constructor(opts: { baseUrl: string; timeoutMs: number; retries: number; model?: string | undefined }, private readonly model = opts.model) {
    this.client = new PeerClient({ name: WORKER_PEER, baseUrl: opts.baseUrl, timeoutMs: opts.timeoutMs, retries: opts.retries });
  }

  async embed(inputs: string[], opts: EmbedOptions = {}): Promise<Embeddings> {
    const model = opts.model || this.model;
    const body: EmbeddingsRequest = { input: inputs, encoding_format: 'base64', ...(model ? { model } : {}) };
    // Same input, same vectors: safe to retry.
    const res = await this.client.post<unknown>('/api/v1/embeddings', body, {
      idempotent: true,
      ...(opts.requestId ? { requestId: opts.requestId } : {}),
      ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
      ...(opts.headers ? { headers: opts.headers } : {}),
    });
    return decodeEmbeddings(res, inputs.length);
  }

  ready(): Promise<boolean> {
    return this.client.ready();
  }

  close(): Promise<void> {
    return this.client.close();
  }
}
