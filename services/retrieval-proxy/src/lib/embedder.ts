import { PeerClient, errors } from '@aicache/service-kit';
import { base64ToVector } from '../domain/vectors.js';

export const WORKER_PEER = 'multimodal-worker';

export interface Embeddings {
  model: string;
  /** One vector per input, in input order. */
  vectors: Float32Array[];
}

/** What the routes need from the worker; tests may hand in their own. */
export interface Embedder {
  embed(inputs: string[], opts?: { requestId?: string; timeoutMs?: number }): Promise<Embeddings>;
  ready(): Promise<boolean>;
  close(): Promise<void>;
}

/** Wire shape of the worker's POST /api/v1/embeddings answer (see the team contracts). */
interface EmbeddingsResponse {
  object?: string;
  data?: Array<{ object?: string; index?: number; embedding?: number[] | string }>;
  model?: string;
  usage?: { prompt_tokens?: number; total_tokens?: number };
}

function malformed(detail: string) {
  return errors.PeerError(WORKER_PEER, 200, `malformed embeddings answer: ${detail}`);
}

/** Checks the worker's answer and turns it into vectors; accepts base64 float32 and plain number arrays. */
export function decodeEmbeddings(res: unknown, expected: number): Embeddings {
  const body = res as EmbeddingsResponse | undefined;
  if (!body || !Array.isArray(body.data)) throw malformed('no data array');
  if (body.data.length !== expected) throw malformed(`${body.data.length} embeddings for ${expected} inputs`);
  const vectors: Array<Float32Array | undefined> = new Array(expected);
  body.data.forEach((item, position) => {
    const index = typeof item.index === 'number' ? item.index : position;
    if (!Number.isInteger(index) || index < 0 || index >= expected || vectors[index]) throw malformed(`bad index ${String(item.index)}`);
    const e = item.embedding;
    let v: Float32Array;
    if (typeof e === 'string') v = base64ToVector(e);
    else if (Array.isArray(e) && e.every((x) => typeof x === 'number' && Number.isFinite(x))) v = Float32Array.from(e);
    else throw malformed(`embedding ${index} is neither base64 nor a number array`);
    if (v.length === 0) throw malformed(`embedding ${index} is empty`);
    vectors[index] = v;
  });
  const dims = vectors[0]?.length;
  if (vectors.some((v) => v === undefined || v.length !== dims)) throw malformed('embeddings differ in dimension');
  return { model: typeof body.model === 'string' ? body.model : 'unknown', vectors: vectors as Float32Array[] };
}

/** The multimodal-worker through the kit's PeerClient (timeouts, retries, x-request-id forwarding). */
export class WorkerEmbedder implements Embedder {
  private readonly client: PeerClient;

  constructor(opts: { baseUrl: string; timeoutMs: number; retries: number; model?: string | undefined }, private readonly model = opts.model) {
    this.client = new PeerClient({ name: WORKER_PEER, baseUrl: opts.baseUrl, timeoutMs: opts.timeoutMs, retries: opts.retries });
  }

  async embed(inputs: string[], opts: { requestId?: string; timeoutMs?: number } = {}): Promise<Embeddings> {
    const body = { input: inputs, encoding_format: 'base64' as const, ...(this.model ? { model: this.model } : {}) };
    // Same input, same vectors: safe to retry.
    const res = await this.client.post<unknown>('/api/v1/embeddings', body, {
      idempotent: true,
      ...(opts.requestId ? { requestId: opts.requestId } : {}),
      ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
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
