import type { FastifyInstance, FastifyReply } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from 'typebox';
import { BadJobInput, type JobContext, type JobKind, type JobRouteHelpers } from '@aicache/jobs';
import { spendBatch, type SpendInputs } from './input-budget.js';
import { errors, errorResponses } from '@aicache/service-kit';
import { ChunkLimitError, chunkTextAsync, textSha256 } from '@aicache/text';
import type { EmbeddingService } from '../domain/embedding-service.js';
import { checkProcessInput, DEFAULT_CHUNK_SIZE, fileTag, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE, type StoredChunk } from '../domain/file-processor.js';
import { jsonArrayStream, vectorBase64, vectorJson } from '../domain/json-stream.js';
import { CHARS_PER_SLICE, WorkBudget } from '../domain/work-budget.js';
import type { ModelRegistry } from '../providers/registry.js';
import { MAX_INPUTS, ModelId } from '../schemas.js';
import { completedJob, type JobStore } from './job-store.js';

export const PROCESS_JOB = 'process';
export const DEFAULT_PROCESS_BATCH = 256;
/** Chunks one page of a process job's result may carry: as many as one synchronous answer with embeddings. */
const MAX_PAGE = MAX_INPUTS;

export function processJobBody(maxBytes: number) {
  return Type.Object(
    {
      // No maxLength: the limit is in UTF-8 bytes, checked at submission (413).
      text: Type.String({ minLength: 1, description: `1 byte to ${maxBytes} bytes of UTF-8 text` }),
      filename: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
      mimeType: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
      chunkSize: Type.Optional(Type.Integer({ minimum: MIN_CHUNK_SIZE, maximum: MAX_CHUNK_SIZE, default: DEFAULT_CHUNK_SIZE, description: 'Characters per chunk' })),
      chunkOverlap: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_CHUNK_SIZE / 2, description: 'At most chunkSize / 2; default 15% of chunkSize' })),
      model: Type.Optional(ModelId),
      includeEmbeddings: Type.Optional(Type.Boolean({ default: false, description: "Store each chunk's embedding with it (read with the chunks)" })),
      batchSize: Type.Optional(
        Type.Integer({ minimum: 1, maximum: MAX_INPUTS, default: DEFAULT_PROCESS_BATCH, description: 'Chunks embedded and stored per batch (progress is saved after each)' }),
      ),
    },
    { additionalProperties: false },
  );
}
type Body = Static<ReturnType<typeof processJobBody>>;

export interface ProcessJobInput {
  textKey: string;
  fileHash: string;
  bytes: number;
  filename: string | null;
  mimeType: string | null;
  chunkSize: number;
  chunkOverlap: number;
  model: string;
  includeEmbeddings: boolean;
  batchSize: number;
}

export interface ProcessJobResult {
  filename: string | null;
  mimeType: string | null;
  fileHash: string;
  bytes: number;
  chunkSize: number;
  chunkOverlap: number;
  chunkCount: number;
  uniqueChunks: number;
  model: string;
  dimensions: number;
  includeEmbeddings: boolean;
  batchSize: number;
  batches: number;
  /** Distinct chunks the model computed in the last run (the others came from the embeddings cache or earlier runs). */
  computed: number;
  /** Where the chunks are read, a page at a time. */
  read: string;
  resumedFrom?: number;
}

function isTransient(err: unknown): boolean {
  const status = (err as { statusCode?: number }).statusCode;
  return status === undefined || status >= 500 || status === 429 || status === 408;
}

/** One batch as stored: a 4-byte length, the chunks as JSON, then their vectors (float32) when asked for. */
function encodeBatch(chunks: StoredChunk[], vectors: Float32Array[] | undefined): Buffer {
  const json = Buffer.from(JSON.stringify(chunks), 'utf8');
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32LE(json.length, 0);
  const parts: Buffer[] = [head, json];
  for (const v of vectors ?? []) parts.push(Buffer.from(v.buffer, v.byteOffset, v.byteLength));
  return Buffer.concat(parts);
}

function decodeBatch(bytes: Buffer, dims: number): { chunks: StoredChunk[]; vectors: Float32Array | undefined } {
  const length = bytes.readUInt32LE(0);
  const chunks = JSON.parse(bytes.subarray(4, 4 + length).toString('utf8')) as StoredChunk[];
  const rest = bytes.subarray(4 + length);
  // A copy on its own aligned buffer: the vectors may start at any byte offset.
  const vectors = rest.length > 0 && dims > 0 ? new Float32Array(new Uint8Array(rest).buffer) : undefined;
  return { chunks, vectors };
}

export interface ProcessJobOptions {
  embeddings: EmbeddingService;
  registry: ModelRegistry;
  store: JobStore;
  maxBytes: number;
  maxChunks: number;
  bodyLimit: number;
  keepCompletedSeconds: number;
  /** Each batch's chunks are spent from the starting credential's EMBEDDINGS_INPUTS_PER_MINUTE. */
  spendInputs: SpendInputs;
}

/**
 * A text larger than one request takes, processed as /api/v1/process/text processes it: the text is stored at
 * submission, and the job chunks it (the same chunks every run), then hashes and embeds the chunks in batches
 * through the EmbeddingService (cached per chunk and tagged file:<fileHash>, as the synchronous route does), storing
 * each batch's chunks (and vectors, with includeEmbeddings) under its own key. Read a page at a time from
 * GET /api/v1/jobs/{id}/chunks.
 */
export function processJob(opts: ProcessJobOptions): JobKind<ProcessJobInput> {
  return {
    name: PROCESS_JOB,
    scope: 'read',
    summary: 'Chunk and embed a large text in the background',
    description:
      `Takes what POST /api/v1/process/text takes, with a text of up to ${opts.maxBytes} bytes (body up to ${opts.bodyLimit} bytes) and ` +
      `up to ${opts.maxChunks} chunks, and processes it in batches of chunks (progress: chunks done of total). Once completed, read ` +
      'the chunks (with their embeddings when includeEmbeddings) with GET /api/v1/jobs/{id}/chunks?offset=&limit=.',
    body: processJobBody(opts.maxBytes),
    bodyLimit: opts.bodyLimit,
    async prepare(raw, _request, job) {
      const body = raw as Body;
      const { chunkSize, chunkOverlap, bytes } = checkProcessInput(body, opts.maxBytes);
      const model = opts.registry.resolve(body.model).id;
      const textKey = await opts.store.putText(job.id, body.text);
      return {
        textKey,
        fileHash: textSha256(body.text),
        bytes,
        filename: body.filename ?? null,
        mimeType: body.mimeType ?? null,
        chunkSize,
        chunkOverlap,
        model,
        includeEmbeddings: body.includeEmbeddings ?? false,
        batchSize: body.batchSize ?? DEFAULT_PROCESS_BATCH,
      };
    },
    async discard(input) {
      await opts.store.dropInputs(input.textKey);
    },
    async run(ctx: JobContext<ProcessJobInput>): Promise<ProcessJobResult> {
      const input = ctx.input;
      const text = await opts.store.text(input.textKey);
      if (text === undefined) throw new BadJobInput("the job's text is no longer stored (past its retention): submit it again");
      await opts.store.touchInputs(input.textKey);
      let all;
      try {
        all = await chunkTextAsync(text, { chunkSize: input.chunkSize, chunkOverlap: input.chunkOverlap }, { maxChunks: opts.maxChunks });
      } catch (err) {
        if (err instanceof ChunkLimitError) throw new BadJobInput(`${err.message}; a job makes at most ${opts.maxChunks}: use a larger chunkSize or split the text`);
        throw err;
      }
      const total = all.length;
      const { batchSize } = input;
      const batches = Math.ceil(total / batchSize);
      const stored = await opts.store.storedPrefix(ctx.id, Math.min(Math.floor(ctx.resumeFrom / batchSize), batches));
      let done = Math.min(stored * batchSize, total);
      await ctx.progress(done, total);
      const tags = [fileTag(input.fileHash)];
      let dimensions = opts.registry.resolve(input.model).dimensions;
      let computed = 0;
      while (done < total) {
        await ctx.checkCancelled();
        const slice = all.slice(done, done + batchSize);
        await spendBatch(ctx, opts.spendInputs, slice.length);
        const budget = new WorkBudget(CHARS_PER_SLICE);
        const chunks: StoredChunk[] = [];
        for (const { index, text: t, start, end } of slice) {
          chunks.push({ index, text: t, hash: textSha256(t), start, end });
          await budget.spend(t.length);
        }
        let result;
        try {
          result = await opts.embeddings.embed(
            chunks.map((c) => c.text),
            { model: input.model, tags },
          );
        } catch (err) {
          if (isTransient(err)) throw err;
          throw new BadJobInput((err as Error).message);
        }
        dimensions = result.dimensions;
        computed += result.computed;
        await opts.store.putBatch(ctx.id, done / batchSize, encodeBatch(chunks, input.includeEmbeddings ? result.vectors : undefined));
        done += slice.length;
        await ctx.progress(done, total);
      }
      if (dimensions === 0 && batches > 0) {
        // Every batch came from an earlier run of a provider that learns its size from its answers.
        const first = await opts.store.batch(ctx.id, 0);
        if (first && input.includeEmbeddings) {
          const jsonBytes = first.readUInt32LE(0);
          dimensions = (first.length - 4 - jsonBytes) / 4 / Math.min(batchSize, total);
        }
      }
      const budget = new WorkBudget(CHARS_PER_SLICE);
      const unique = new Set<string>();
      for (const c of all) {
        unique.add(c.text);
        await budget.spend(c.text.length);
      }
      await opts.store.expireBatches(ctx.id, batches, opts.keepCompletedSeconds);
      await opts.store.dropInputs(input.textKey);
      return {
        filename: input.filename,
        mimeType: input.mimeType,
        fileHash: input.fileHash,
        bytes: input.bytes,
        chunkSize: input.chunkSize,
        chunkOverlap: input.chunkOverlap,
        chunkCount: total,
        uniqueChunks: unique.size,
        model: input.model,
        dimensions,
        includeEmbeddings: input.includeEmbeddings,
        batchSize,
        batches,
        computed,
        read: `/api/v1/jobs/${ctx.id}/chunks`,
        ...(stored > 0 ? { resumedFrom: Math.min(stored * batchSize, total) } : {}),
      };
    },
  };
}

const PageParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9_-]+$' }) }, { additionalProperties: false });
const PageQuery = Type.Object(
  {
    offset: Type.Optional(Type.Integer({ minimum: 0, default: 0, description: 'Index of the first chunk of the page' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PAGE, default: 500, description: `Chunks in the page, 1 .. ${MAX_PAGE}` })),
    encoding_format: Type.Optional(Type.Union([Type.Literal('float'), Type.Literal('base64')], { default: 'float', description: 'Of the embeddings, when stored' })),
  },
  { additionalProperties: false },
);
const PageAnswer = Type.Object({
  object: Type.Literal('list'),
  data: Type.Array(
    Type.Object({
      index: Type.Integer(),
      text: Type.String(),
      hash: Type.String(),
      start: Type.Integer(),
      end: Type.Integer(),
      embedding: Type.Optional(Type.Union([Type.Array(Type.Number()), Type.String()])),
    }),
  ),
  fileHash: Type.String(),
  model: Type.String(),
  dimensions: Type.Integer(),
  total: Type.Integer({ description: 'Chunks of the text' }),
  offset: Type.Integer(),
  has_more: Type.Boolean(),
});

/** GET /api/v1/jobs/{id}/chunks: a completed process job's chunks (and embeddings), a page at a time. */
export function processJobRoutes(scope: FastifyInstance, opts: { helpers: JobRouteHelpers; store: JobStore }): void {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  app.get(
    '/api/v1/jobs/:id/chunks',
    {
      config: { auth: 'read' },
      schema: {
        tags: ['jobs'],
        summary: "A page of a completed process job's chunks",
        description:
          'The chunks [offset, offset + limit) as POST /api/v1/process/text lists them (index, text, hash, start, end, and embedding ' +
          "when the job was started with includeEmbeddings), plus total and has_more. Another tenant's job is a 404; a job not completed a 409.",
        params: PageParams,
        querystring: PageQuery,
        response: { 200: PageAnswer, ...errorResponses(400, 404, 409, 503) },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const job = await completedJob(opts.helpers, request, id, PROCESS_JOB, 'chunks');
      const result = job.returnvalue as ProcessJobResult;
      const offset = request.query.offset ?? 0;
      const limit = request.query.limit ?? 500;
      if (offset > result.chunkCount) throw new errors.BadRequest(`offset ${offset} is past the job's ${result.chunkCount} chunks`);
      const end = Math.min(offset + limit, result.chunkCount);
      const items: Array<{ chunk: StoredChunk; vector: Float32Array | undefined }> = [];
      for (let at = offset; at < end; ) {
        const b = Math.floor(at / result.batchSize);
        const bytes = await opts.helpers.bounded('reading the chunks', () => opts.store.batch(id, b));
        if (!bytes) throw new errors.NotFound('chunks of job', id);
        const { chunks, vectors } = decodeBatch(bytes, result.dimensions);
        const upTo = Math.min(end, b * result.batchSize + chunks.length);
        if (upTo <= at) throw new errors.NotFound('chunks of job', id);
        for (let i = at - b * result.batchSize; i < upTo - b * result.batchSize; i++) {
          items.push({ chunk: chunks[i]!, vector: vectors?.subarray(i * result.dimensions, (i + 1) * result.dimensions) });
        }
        at = upTo;
      }
      const encode = request.query.encoding_format === 'base64' ? (v: Float32Array) => `"${vectorBase64(v)}"` : vectorJson;
      const json = JSON.stringify;
      const body = jsonArrayStream(
        '{"object":"list","data":[',
        items,
        ({ chunk: c, vector }) =>
          `{"index":${c.index},"text":${json(c.text)},"hash":${json(c.hash)},"start":${c.start},"end":${c.end}${vector ? `,"embedding":${encode(vector)}` : ''}}`,
        `],"fileHash":${json(result.fileHash)},"model":${json(result.model)},"dimensions":${result.dimensions},` +
          `"total":${result.chunkCount},"offset":${offset},"has_more":${end < result.chunkCount}}`,
      );
      return (reply as FastifyReply).type('application/json; charset=utf-8').send(body);
    },
  );
}
