import { chunkText } from './chunker.js';
import type { EmbeddingService } from './embedding-service.js';
import { sha256Hex } from './hash.js';
import type { ModelRegistry } from '../providers/registry.js';
import { InvalidInput, PayloadTooLarge } from '../errors.js';
import { MAX_TEXT_BYTES } from '../schemas.js';

export const DEFAULT_CHUNK_SIZE = 1000;
export const DEFAULT_CHUNK_OVERLAP = 150;
export const MIN_CHUNK_SIZE = 200;
export const MAX_CHUNK_SIZE = 8000;

/** The part of a cache category this needs (structurally a @aicache/cache CategoryCache). */
export interface ResultStore {
  wrapJsonResult(key: string, loader: () => Promise<unknown>, opts?: { tags?: string[] }): Promise<{ value: Buffer; hit: boolean }>;
}

export interface ProcessInput {
  text: string;
  filename?: string | undefined;
  mimeType?: string | undefined;
  chunkSize?: number | undefined;
  chunkOverlap?: number | undefined;
  model?: string | undefined;
  includeEmbeddings?: boolean | undefined;
}

export interface ProcessOutput {
  /** The response body: ready bytes, or an object when embeddings were added. */
  body: Buffer | Record<string, unknown>;
  cache: 'hit' | 'miss';
  fileHash: string;
}

interface StoredChunk {
  index: number;
  text: string;
  hash: string;
  start: number;
  end: number;
}

/** What is cached per (text, chunking, model): everything but the caller's filename and MIME type. */
interface StoredResult {
  fileHash: string;
  bytes: number;
  chunkSize: number;
  chunkOverlap: number;
  chunks: StoredChunk[];
  chunkCount: number;
  uniqueChunks: number;
  model: string;
  dimensions: number;
}

export function fileTag(fileHash: string): string {
  return `file:${fileHash}`;
}

export function resultCacheKey(fileHash: string, chunkSize: number, chunkOverlap: number, model: string): string {
  return `${fileHash}:${chunkSize}:${chunkOverlap}:${model}`;
}

/** Range checks that a schema cannot express (overlap ≤ chunkSize / 2, size in bytes). */
export function checkProcessInput(input: ProcessInput): { chunkSize: number; chunkOverlap: number; bytes: number } {
  const chunkSize = input.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (!Number.isInteger(chunkSize) || chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE) {
    throw new InvalidInput(`chunkSize must be a whole number from ${MIN_CHUNK_SIZE} to ${MAX_CHUNK_SIZE} (got ${String(input.chunkSize)})`);
  }
  const chunkOverlap = input.chunkOverlap ?? Math.min(DEFAULT_CHUNK_OVERLAP, Math.floor(chunkSize / 2));
  if (!Number.isInteger(chunkOverlap) || chunkOverlap < 0 || chunkOverlap > Math.floor(chunkSize / 2)) {
    throw new InvalidInput(`chunkOverlap must be a whole number from 0 to chunkSize / 2 = ${Math.floor(chunkSize / 2)} (got ${String(input.chunkOverlap)})`);
  }
  if (input.text.length === 0) throw new InvalidInput('text is empty');
  const bytes = Buffer.byteLength(input.text, 'utf8');
  if (bytes > MAX_TEXT_BYTES) throw new PayloadTooLarge(`text is ${bytes} bytes; the limit is ${MAX_TEXT_BYTES} bytes (2 MiB)`);
  return { chunkSize, chunkOverlap, bytes };
}

/**
 * Text → chunks → embeddings, cached as one entry per (fileHash, chunkSize, overlap, model) in the
 * `files` category and tagged `file:<fileHash>`; the chunk embeddings it computes carry the same tag,
 * so DELETE /api/v1/cache/file/:fileHash removes both.
 */
export class FileProcessor {
  constructor(
    private readonly registry: ModelRegistry,
    private readonly embeddings: EmbeddingService,
    private readonly files: ResultStore,
  ) {}

  async process(input: ProcessInput): Promise<ProcessOutput> {
    const { chunkSize, chunkOverlap, bytes } = checkProcessInput(input);
    const model = this.registry.resolve(input.model).id;
    const fileHash = sha256Hex(input.text);
    const tags = [fileTag(fileHash)];

    const { value: stored, hit } = await this.files.wrapJsonResult(
      resultCacheKey(fileHash, chunkSize, chunkOverlap, model),
      async (): Promise<StoredResult> => {
        const chunks = chunkText(input.text, { chunkSize, chunkOverlap }).map((c) => ({ ...c, hash: sha256Hex(c.text) }));
        const unique = [...new Set(chunks.map((c) => c.text))];
        const embedded = unique.length ? await this.embeddings.embed(unique, { model, tags }) : undefined;
        return {
          fileHash,
          bytes,
          chunkSize,
          chunkOverlap,
          chunks: chunks.map(({ index, text, hash, start, end }) => ({ index, text, hash, start, end })),
          chunkCount: chunks.length,
          uniqueChunks: unique.length,
          model,
          dimensions: embedded?.dimensions || this.registry.resolve(model).dimensions,
        };
      },
      { tags },
    );

    const cache = hit ? 'hit' : 'miss';
    const filename = input.filename ?? null;
    const mimeType = input.mimeType ?? null;

    if (!input.includeEmbeddings) {
      // The stored bytes are a JSON object; the caller's own filename and type go in front without a re-parse.
      const head = Buffer.from(`{"filename":${JSON.stringify(filename)},"mimeType":${JSON.stringify(mimeType)},`);
      return { body: Buffer.concat([head, stored.subarray(1)]), cache, fileHash };
    }

    const result = JSON.parse(stored.toString('utf8')) as StoredResult;
    const unique = [...new Set(result.chunks.map((c) => c.text))];
    // Usually all hits; entries evicted since are recomputed and tagged for this file again.
    const embedded = unique.length ? await this.embeddings.embed(unique, { model, tags }) : undefined;
    const byText = new Map(unique.map((t, i) => [t, embedded!.vectors[i]!]));
    return {
      body: {
        filename,
        mimeType,
        ...result,
        chunks: result.chunks.map((c) => ({ ...c, embedding: Array.from(byText.get(c.text)!) })),
      },
      cache,
      fileHash,
    };
  }
}
