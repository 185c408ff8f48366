import type { FastifyInstance, FastifyReply } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from 'typebox';
import { BadJobInput, type JobContext, type JobKind, type JobRouteHelpers } from '@aicache/jobs';
import { spendBatch, type SpendInputs } from './input-budget.js';
import { errors, errorResponses } from '@aicache/service-kit';
import type { EmbeddingService } from '../domain/embedding-service.js';
import { jsonArrayStream, vectorBase64, vectorJson } from '../domain/json-stream.js';
import { countTokens } from '../domain/usage.js';
import type { ModelRegistry } from '../providers/registry.js';
import { MAX_INPUTS, ModelId } from '../schemas.js';
import { completedJob, type JobStore } from './job-store.js';

export const EMBEDDINGS_JOB = 'embeddings';
export const DEFAULT_JOB_BATCH = 512;
/** Embeddings one page of a job's result may carry: as many as one synchronous answer. */
export const MAX_PAGE = MAX_INPUTS;

export function embeddingsJobBody(maxInputs: number) {
  // No minLength/maxLength on the items: prepare checks them in O(1) each and names the first bad index, where the
  // validator would count the code points of every input.
  return Type.Object(
    {
      input: Type.Array(Type.String(), { minItems: 1, maxItems: maxInputs, description: `1 .. ${maxInputs} non-empty strings, each within the model's input limit` }),
      model: Type.Optional(ModelId),
      dimensions: Type.Optional(Type.Integer({ minimum: 1, maximum: 65_536, description: "Accepted when it equals the model's" })),
      batchSize: Type.Optional(
        Type.Integer({ minimum: 1, maximum: MAX_INPUTS, default: DEFAULT_JOB_BATCH, description: 'Inputs embedded and stored per batch (progress is saved after each)' }),
      ),
      user: Type.Optional(Type.String({ maxLength: 256, description: 'Accepted for OpenAI compatibility; ignored' })),
    },
    { additionalProperties: false },
  );
}
type Body = Static<ReturnType<typeof embeddingsJobBody>>;

/** What the BullMQ record holds: where the inputs are, never the inputs themselves. */
export interface EmbeddingsJobInput {
  inputsKey: string;
  count: number;
  model: string;
  batchSize: number;
}

export interface EmbeddingsJobResult {
  inputs: number;
  model: string;
  dimensions: number;
  batchSize: number;
  batches: number;
  /** Inputs the model computed in the last run (the others came from the embeddings cache or from earlier runs' batches). */
  computed: number;
  promptTokens: number;
  /** Where the vectors are read, a page at a time. */
  read: string;
  resumedFrom?: number;
}

/** A failure that may pass (provider down or overloaded, state Redis away): the job is tried again, from its last batch. */
function isTransient(err: unknown): boolean {
  const status = (err as { statusCode?: number }).statusCode;
  return status === undefined || status >= 500 || status === 429 || status === 408;
}

function vectorBytes(vectors: readonly Float32Array[], dims: number): Buffer {
  const out = Buffer.allocUnsafe(vectors.length * dims * 4);
  vectors.forEach((v, i) => {
    if (v.length !== dims) throw new Error(`vector ${i} has ${v.length} dimensions, not ${dims}`);
    Buffer.from(v.buffer, v.byteOffset, v.byteLength).copy(out, i * dims * 4);
  });
  return out;
}

export interface EmbeddingsJobOptions {
  embeddings: EmbeddingService;
  registry: ModelRegistry;
  store: JobStore;
  maxInputs: number;
  bodyLimit: number;
  /** Retention of a completed job (its vectors get the same). */
  keepCompletedSeconds: number;
  /** Each batch's inputs are spent from the starting credential's EMBEDDINGS_INPUTS_PER_MINUTE. */
  spendInputs: SpendInputs;
}

/**
 * Embeddings of more inputs than one request takes: the inputs go to a list on the state Redis at submission, the
 * job embeds them in batches through the EmbeddingService (each input cached as the synchronous route caches it),
 * stores each batch's vectors (float32 bytes) under its own key and saves progress after each. A retried or
 * handed-over run starts after the last stored batch; the vectors are read a page at a time from
 * GET /api/v1/jobs/{id}/embeddings.
 */
export function embeddingsJob(opts: EmbeddingsJobOptions): JobKind<EmbeddingsJobInput> {
  return {
    name: EMBEDDINGS_JOB,
    scope: 'read',
    summary: 'Create embeddings of many inputs in the background',
    description:
      `Takes what POST /api/v1/embeddings takes, with up to ${opts.maxInputs} inputs (body up to ${opts.bodyLimit} bytes), and embeds ` +
      'them in batches (progress: inputs done of total). Each input is cached as in the synchronous route. Once completed, the ' +
      "job's result says how many vectors there are; read them with GET /api/v1/jobs/{id}/embeddings?offset=&limit=.",
    body: embeddingsJobBody(opts.maxInputs),
    bodyLimit: opts.bodyLimit,
    async prepare(raw, _request, job) {
      const body = raw as Body;
      const provider = opts.registry.resolve(body.model);
      const limit = provider.describe().max_input_chars;
      const bad = body.input.findIndex((t) => t.length === 0 || t.length > limit);
      if (bad >= 0) {
        const len = body.input[bad]!.length;
        throw new errors.BadRequest(len === 0 ? `input[${bad}] is empty` : `input[${bad}] has ${len} characters; model '${provider.id}' accepts at most ${limit}`);
      }
      if (body.dimensions !== undefined && provider.dimensions && body.dimensions !== provider.dimensions) {
        throw new errors.BadRequest(`model '${provider.id}' has ${provider.dimensions} dimensions; dimensions=${body.dimensions} is not supported`);
      }
      const inputsKey = await opts.store.putInputs(job.id, body.input);
      return { inputsKey, count: body.input.length, model: provider.id, batchSize: body.batchSize ?? DEFAULT_JOB_BATCH };
    },
    async discard(input) {
      await opts.store.dropInputs(input.inputsKey);
    },
    async run(ctx: JobContext<EmbeddingsJobInput>): Promise<EmbeddingsJobResult> {
      const { inputsKey, count, model, batchSize } = ctx.input;
      const batches = Math.ceil(count / batchSize);
      // Batches stored by an earlier run are kept, as far as they are all there.
      const stored = await opts.store.storedPrefix(ctx.id, Math.min(Math.floor(ctx.resumeFrom / batchSize), batches));
      let done = Math.min(stored * batchSize, count);
      if (done < count && !(await opts.store.touchInputs(inputsKey))) {
        throw new BadJobInput("the job's inputs are no longer stored (past their retention): submit it again");
      }
      await ctx.progress(done, count);
      let dimensions = opts.registry.resolve(model).dimensions;
      let computed = 0;
      while (done < count) {
        await ctx.checkCancelled();
        const batch = done / batchSize;
        const texts = await opts.store.inputs(inputsKey, done, Math.min(done + batchSize, count));
        if (!texts) throw new BadJobInput("the job's inputs are no longer stored (past their retention): submit it again");
        await spendBatch(ctx, opts.spendInputs, texts.length);
        let result;
        try {
          result = await opts.embeddings.embed(texts, { model });
        } catch (err) {
          if (isTransient(err)) throw err;
          throw new BadJobInput((err as Error).message);
        }
        dimensions = result.dimensions;
        computed += result.computed;
        const tokens = await countTokens(texts);
        await opts.store.putBatch(ctx.id, batch, vectorBytes(result.vectors, dimensions), tokens);
        done += texts.length;
        await ctx.progress(done, count);
      }
      if (dimensions === 0) {
        // Every batch came from an earlier run of a provider that learns its size from its answers: the first
        // batch's length tells it.
        dimensions = (await opts.store.batchBytes(ctx.id, 0)) / 4 / Math.min(batchSize, count);
      }
      await opts.store.expireBatches(ctx.id, batches, opts.keepCompletedSeconds);
      const promptTokens = await opts.store.tokens(ctx.id);
      await opts.store.dropInputs(inputsKey);
      return {
        inputs: count,
        model,
        dimensions,
        batchSize,
        batches,
        computed,
        promptTokens,
        read: `/api/v1/jobs/${ctx.id}/embeddings`,
        ...(stored > 0 ? { resumedFrom: Math.min(stored * batchSize, count) } : {}),
      };
    },
  };
}

const PageParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9_-]+$' }) }, { additionalProperties: false });
const PageQuery = Type.Object(
  {
    offset: Type.Optional(Type.Integer({ minimum: 0, default: 0, description: 'Index of the first embedding of the page' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PAGE, default: 1000, description: `Embeddings in the page, 1 .. ${MAX_PAGE}` })),
    encoding_format: Type.Optional(Type.Union([Type.Literal('float'), Type.Literal('base64')], { default: 'float' })),
  },
  { additionalProperties: false },
);
const PageAnswer = Type.Object({
  object: Type.Literal('list'),
  data: Type.Array(
    Type.Object({
      object: Type.Literal('embedding'),
      index: Type.Integer({ description: "The input's position in the job" }),
      embedding: Type.Union([Type.Array(Type.Number()), Type.String({ description: 'base64 of float32 little-endian' })]),
    }),
  ),
  model: Type.String(),
  usage: Type.Object({ prompt_tokens: Type.Integer(), total_tokens: Type.Integer() }, { description: "The whole job's (rough) token count" }),
  total: Type.Integer({ description: 'Embeddings in the job' }),
  offset: Type.Integer(),
  has_more: Type.Boolean({ description: 'Whether embeddings follow this page (read on at offset + data.length)' }),
});

/** GET /api/v1/jobs/{id}/embeddings: a completed embeddings job's vectors, a page at a time, in the OpenAI shape. */
export function embeddingsJobRoutes(scope: FastifyInstance, opts: { helpers: JobRouteHelpers; store: JobStore }): void {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  app.get(
    '/api/v1/jobs/:id/embeddings',
    {
      config: { auth: 'read' },
      schema: {
        tags: ['jobs'],
        summary: "A page of a completed embeddings job's vectors (OpenAI shape)",
        description:
          '`{object: "list", data: [{object: "embedding", index, embedding}], model, usage}` as POST /api/v1/embeddings answers, for inputs ' +
          '[offset, offset + limit) of the job, plus `total`, `offset` and `has_more`. Another tenant\'s job is a 404; a job not completed a 409.',
        params: PageParams,
        querystring: PageQuery,
        response: { 200: PageAnswer, ...errorResponses(400, 404, 409, 503) },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const job = await completedJob(opts.helpers, request, id, EMBEDDINGS_JOB, 'embeddings');
      const result = job.returnvalue as EmbeddingsJobResult;
      const offset = request.query.offset ?? 0;
      const limit = request.query.limit ?? 1000;
      if (offset > result.inputs) throw new errors.BadRequest(`offset ${offset} is past the job's ${result.inputs} embeddings`);
      const end = Math.min(offset + limit, result.inputs);
      const vectorSize = result.dimensions * 4;
      const vectors: Float32Array[] = [];
      for (let at = offset; at < end; ) {
        const batch = Math.floor(at / result.batchSize);
        const upTo = Math.min(end, (batch + 1) * result.batchSize);
        const first = at - batch * result.batchSize;
        const bytes = await opts.helpers.bounded('reading the embeddings', () =>
          opts.store.readBatch(id, batch, first * vectorSize, (upTo - batch * result.batchSize) * vectorSize),
        );
        if (!bytes) throw new errors.NotFound('embeddings of job', id);
        // A copy on its own aligned buffer: Redis answers may start at any byte offset.
        const floats = new Float32Array(new Uint8Array(bytes).buffer);
        for (let i = 0; i < upTo - at; i++) vectors.push(floats.subarray(i * result.dimensions, (i + 1) * result.dimensions));
        at = upTo;
      }
      const encode = request.query.encoding_format === 'base64' ? (v: Float32Array) => `"${vectorBase64(v)}"` : vectorJson;
      const tokens = result.promptTokens;
      const body = jsonArrayStream(
        '{"object":"list","data":[',
        vectors,
        (v, i) => `{"object":"embedding","index":${offset + i},"embedding":${encode(v)}}`,
        `],"model":${JSON.stringify(result.model)},"usage":{"prompt_tokens":${tokens},"total_tokens":${tokens}},` +
          `"total":${result.inputs},"offset":${offset},"has_more":${end < result.inputs}}`,
      );
      // Streamed: a page of 2048 vectors as JSON numbers is megabytes (the schema documents it, the stream is sent as is).
      return (reply as FastifyReply).type('application/json; charset=utf-8').send(body);
    },
  );
}
