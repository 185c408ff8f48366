/** What GET /api/v1/models answers for one model. */
export interface ModelMetadata {
  id: string;
  object: 'model';
  /** Unix time (seconds) the model was published, as OpenAI's model objects carry; 0 when unknown. */
  created: number;
  /** Who publishes the model, as OpenAI's model objects carry. */
  owned_by: string;
  /** 'local' for the built-in embedder, 'openai' for an OpenAI-compatible endpoint. */
  provider: string;
  /** Vector length; null while an OpenAI-compatible model has not been asked yet and EMBEDDINGS_DIMENSIONS is unset. */
  dimensions: number | null;
  /** Longest input (characters) this service accepts for the model. */
  max_input_chars: number;
  description: string;
}

/** Something that turns texts into vectors. One implementation per backend; the cache sits in front of all of them. */
export interface EmbeddingProvider {
  /** Model id as callers name it in `model`; also the first part of the cache key. */
  readonly id: string;
  /** Vector length, or 0 while unknown (an OpenAI-compatible model without EMBEDDINGS_DIMENSIONS, before its first answer). */
  readonly dimensions: number;
  /** One vector per text, in the order of `texts`. Rejects with an HTTP-shaped error (502/503) when a backend fails. */
  embed(texts: string[]): Promise<Float32Array[]>;
  /** Metadata from configuration alone; never does I/O. */
  describe(): ModelMetadata;
  /** Metadata that may ask the backend (e.g. `${base}/models/<id>`); falls back to describe(). */
  loadMetadata?(): Promise<ModelMetadata>;
  /** Releases sockets and the like. */
  close?(): Promise<void>;
}
