import { errors } from '@aicache/service-kit';
import type { Readable } from 'node:stream';
import { ChunkLimitError, chunkTextAsync, defaultChunkOverlap, maxChunkOverlap, textSha256, type Chunk } from '@aicache/text';
import type { EmbeddingService } from './embedding-service.js';
import { jsonArrayStream, vectorJson } from './json-stream.js';
import { CHARS_PER_SLICE, WorkBudget } from './work-budget.js';
import type { ModelRegistry } from '../providers/registry.js';

import { MAX_EMBEDDED_CHUNKS, MAX_PROCESS_CHUNKS, MAX_TEXT_BYTES } from '../schemas.js';

export const DEFAULT_CHUNK_SIZE = 1000;
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
  /** The response body: ready bytes, or a stream of JSON when embeddings were added. */
  body: Buffer | Readable;
  cache: 'hit' | 'miss';
  fileHash: string;
}

/** A chunk as stored: its text, its hash and where it sits in the text it came from. */
export interface StoredChunk {
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

/**
 * Range checks that a schema cannot express (overlap ≤ chunkSize / 2, size in bytes, by default the synchronous
 * routes' MAX_TEXT_BYTES; `tooLargeHint` ends the 413 past it). The default overlap is 15% of chunkSize.
 */
export function checkProcessInput(input: ProcessInput, maxBytes = MAX_TEXT_BYTES, tooLargeHint = ''): { chunkSize: number; chunkOverlap: number; bytes: number } {
  const chunkSize = input.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (!Number.isInteger(chunkSize) || chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE) {
    throw new errors.BadRequest(`chunkSize must be a whole number from ${MIN_CHUNK_SIZE} to ${MAX_CHUNK_SIZE} (got ${String(input.chunkSize)})`);
  }
  const chunkOverlap = input.chunkOverlap ?? defaultChunkOverlap(chunkSize);
  const maxOverlap = maxChunkOverlap(chunkSize);
  if (!Number.isInteger(chunkOverlap) || chunkOverlap < 0 || chunkOverlap > maxOverlap) {
    throw new errors.BadRequest(`chunkOverlap must be a whole number from 0 to chunkSize / 2 = ${maxOverlap} (got ${String(input.chunkOverlap)})`);
  }
  if (input.text.length === 0) throw new errors.BadRequest('text is empty');
  const bytes = Buffer.byteLength(input.text, 'utf8');
  if (bytes > maxBytes) throw new errors.BodyTooLarge(`text is ${bytes} bytes; the limit is ${maxBytes} bytes${maxBytes === MAX_TEXT_BYTES ? ' (2 MiB)' : ''}${tooLargeHint}`);
  return { chunkSize, chunkOverlap, bytes };
}

/**
 * The chunks of a text, at most `limit` of them (413 past it, with `tooMany` saying what to do),
 * with the event loop free every 64K characters.
 */
async function chunksWithin(text: string, options: { chunkSize: number; chunkOverlap: number }, limit: number, tooMany: string): Promise<Chunk[]> {
  try {
    return await chunkTextAsync(text, options, { maxChunks: limit });
  } catch (err) {
    if (err instanceof ChunkLimitError) throw new errors.BodyTooLarge(`${err.message}; ${tooMany}`);
    throw err;
  }
}

/**
 * Text → chunks → embeddings, cached as one entry per (fileHash, chunkSize, overlap, model) in the
 * `files` category and tagged `file:<fileHash>`; the chunk embeddings it computes carry the same tag,
 * so DELETE /api/v1/cache/file/:fileHash removes both. A request makes at most MAX_PROCESS_CHUNKS
 * chunks, and an answer with embeddings carries at most MAX_EMBEDDED_CHUNKS (413 past either).
 */
export class FileProcessor {
  constructor(
    private readonly registry: ModelRegistry,
    private readonly embeddings: EmbeddingService,
    private readonly files: ResultStore,
    /** Appended to the 413 of a text too large for one request: where larger work goes instead (a background job). */
    private readonly tooLargeHint = '',
  ) {}

  /**
   * `charge` is told how many distinct chunks are about to be embedded (on a miss, before any embedding): it spends
   * them from the caller's EMBEDDINGS_INPUTS_PER_MINUTE, or throws (429/413) and nothing is embedded.
   */
  async process(input: ProcessInput, charge?: (inputs: number) => Promise<void>): Promise<ProcessOutput> {
    const { chunkSize, chunkOverlap, bytes } = checkProcessInput(input, MAX_TEXT_BYTES, this.tooLargeHint);
    const model = this.registry.resolve(input.model).id;
    const fileHash = textSha256(input.text);
    const tags = [fileTag(fileHash)];
    const options = { chunkSize, chunkOverlap };

    // Checked before any embedding work; the loader then reuses these chunks on a miss.
    let chunks = input.includeEmbeddings
      ? await chunksWithin(
          input.text,
          options,
          MAX_EMBEDDED_CHUNKS,
          `with includeEmbeddings one answer holds at most ${MAX_EMBEDDED_CHUNKS} chunks: use a larger chunkSize, ` +
            `or ask without includeEmbeddings and embed the chunks through /api/v1/embeddings${this.tooLargeHint}`,
        )
      : undefined;

    const { value: stored, hit } = await this.files.wrapJsonResult(
      resultCacheKey(fileHash, chunkSize, chunkOverlap, model),
      async (): Promise<StoredResult> => {
        chunks ??= await chunksWithin(input.text, options, MAX_PROCESS_CHUNKS, `one request makes at most ${MAX_PROCESS_CHUNKS}: use a larger chunkSize or split the text${this.tooLargeHint}`);
        const budget = new WorkBudget(CHARS_PER_SLICE);
        const hashed: StoredChunk[] = [];
        for (const { index, text, start, end } of chunks) {
          hashed.push({ index, text, hash: textSha256(text), start, end });
          await budget.spend(text.length);
        }
        const unique = [...new Set(hashed.map((c) => c.text))];
        await charge?.(unique.length);
        const embedded = unique.length ? await this.embeddings.embed(unique, { model, tags }) : undefined;
        return {
          fileHash,
          bytes,
          chunkSize,
          chunkOverlap,
          chunks: hashed,
          chunkCount: hashed.length,
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
    const json = JSON.stringify;
    const head =
      `{"filename":${json(filename)},"mimeType":${json(mimeType)},"fileHash":${json(result.fileHash)},"bytes":${result.bytes},` +
      `"chunkSize":${result.chunkSize},"chunkOverlap":${result.chunkOverlap},"chunks":[`;
    const tail = `],"chunkCount":${result.chunkCount},"uniqueChunks":${result.uniqueChunks},"model":${json(result.model)},"dimensions":${result.dimensions}}`;
    const body = jsonArrayStream(
      head,
      result.chunks,
      (c) => `{"index":${c.index},"text":${json(c.text)},"hash":${json(c.hash)},"start":${c.start},"end":${c.end},"embedding":${vectorJson(byText.get(c.text)!)}}`,
      tail,
    );
    return { body, cache, fileHash };
  }
}
