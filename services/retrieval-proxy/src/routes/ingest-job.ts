import { randomUUID } from 'node:crypto';
import { Type, type Static } from 'typebox';
import type { ServiceTokens } from '@aicache/auth';
import { BadJobInput, type InputStore, type JobContext, type JobKind } from '@aicache/jobs';
import { serviceTokenHeaders } from '@aicache/auth';
import { errors } from '@aicache/service-kit';
import type { IngestInput, RetrievalService } from '../domain/retrieval-service.js';
import { DocumentId, Metadata } from '../schemas.js';

const BulkDocument = Type.Object(
  {
    id: Type.Optional(DocumentId),
    title: Type.String({ minLength: 1, maxLength: 500 }),
    text: Type.String({ minLength: 1, maxLength: 1_048_576, description: '1 byte .. 1 MB (UTF-8)' }),
    source: Type.Optional(Type.String({ maxLength: 2048, description: 'A label only; never fetched' })),
    metadata: Type.Optional(Metadata),
    chunkSize: Type.Optional(Type.Integer({ minimum: 100, maximum: 8000 })),
    chunkOverlap: Type.Optional(Type.Integer({ minimum: 0, maximum: 4000 })),
  },
  { additionalProperties: false },
);

export function bulkIngestBody(maxDocuments: number) {
  return Type.Object(
    {
      documents: Type.Array(BulkDocument, { minItems: 1, maxItems: maxDocuments, description: `1 .. ${maxDocuments} documents, each as POST /api/v1/documents takes it` }),
      batchSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50, description: 'Documents embedded and stored per batch (progress is saved after each)' })),
    },
    { additionalProperties: false },
  );
}

type Body = Static<ReturnType<typeof bulkIngestBody>>;
type BulkDocument = IngestInput & { id: string };
/**
 * The job's input: the documents are in the input store (one JSON per document, `inputsKey`), so that reading the job
 * stays small whatever its size. A job submitted before that holds its documents inline.
 */
interface BulkInput {
  inputsKey?: string;
  count?: number;
  documents?: BulkDocument[];
  batchSize: number;
}

const GONE = "the job's documents are no longer stored (past their retention): submit it again";

/** At most this many refused documents are named in a job's result (the count is always whole). */
const MAX_REPORTED_FAILURES = 100;

/** A failure that may pass (worker down or overloaded, state Redis away): the job is tried again, from its last batch. */
function isTransient(err: unknown): boolean {
  const status = (err as { statusCode?: number }).statusCode;
  return status === undefined || status >= 500 || status === 429 || status === 408;
}

/**
 * The bulk ingest job: documents in batches, each batch embedded through the worker (with a service token for the
 * principal that started the job) and stored, progress saved after each. Ids are fixed at submission, so a batch run
 * twice (a retry, or a job handed over after its process died) replaces the same documents: nothing is ingested twice.
 */
export function ingestJob(opts: { retrieval: RetrievalService; tokens: ServiceTokens; inputs: InputStore; maxDocuments: number; bodyLimit: number }): JobKind<BulkInput> {
  return {
    name: 'ingest',
    summary: 'Ingest many documents in the background',
    description:
      'Starts a job that chunks, embeds (through the multimodal-worker) and stores the documents in batches, reporting progress ' +
      '(documents done of total) after each. Documents without an id get one now, so a retried batch replaces rather than duplicates. ' +
      'A document with bad input (too many chunks, reserved metadata keys) is listed in the result and the others go on.',
    body: bulkIngestBody(opts.maxDocuments),
    bodyLimit: opts.bodyLimit,
    async prepare(raw, _request, job) {
      const body = raw as Body;
      const seen = new Set<string>();
      const documents = body.documents.map((d, i) => {
        if (d.id !== undefined) {
          if (seen.has(d.id)) throw errors.BadRequest(`documents[${i}].id '${d.id}' appears more than once in this request`);
          seen.add(d.id);
        }
        return { ...d, id: d.id ?? randomUUID() };
      });
      const inputsKey = await opts.inputs.putInputs(job.id, documents.map((d) => JSON.stringify(d)));
      return { inputsKey, count: documents.length, batchSize: body.batchSize ?? 50 };
    },
    async discard(input) {
      if (input.inputsKey) await opts.inputs.dropInputs(input.inputsKey);
    },
    async run(ctx: JobContext<BulkInput>) {
      const { documents, inputsKey, batchSize } = ctx.input;
      const total = documents?.length ?? ctx.input.count ?? 0;
      if (total === 0 || (!documents && !inputsKey)) throw new BadJobInput('the job has no documents');
      const batchOf = async (from: number, to: number): Promise<BulkDocument[]> => {
        if (documents) return documents.slice(from, to);
        const items = await opts.inputs.inputs(inputsKey!, from, to);
        if (!items) throw new BadJobInput(GONE);
        return items.map((j) => JSON.parse(j) as BulkDocument);
      };
      const call = {
        requestId: `job-${ctx.id}`,
        credentials: () => serviceTokenHeaders(opts.tokens, ctx.principal),
      };
      let ingested = 0;
      let chunks = 0;
      let failedCount = 0;
      const failed: Array<{ id?: string; message: string }> = [];
      let corpusVersion: number | undefined;
      let done = Math.min(ctx.resumeFrom, total);
      // A retry, or a run resumed long after submission, keeps the documents for another retention period.
      if (inputsKey && done < total && !(await opts.inputs.touchInputs(inputsKey))) throw new BadJobInput(GONE);
      await ctx.progress(done, total);
      while (done < total) {
        await ctx.checkCancelled();
        const batch = await batchOf(done, Math.min(done + batchSize, total));
        let outcomes;
        try {
          outcomes = await opts.retrieval.ingestMany(ctx.tenant, batch, call);
        } catch (err) {
          if (isTransient(err)) throw err;
          throw new BadJobInput((err as Error).message);
        }
        for (const o of outcomes) {
          if (o.ok) {
            ingested += 1;
            chunks += o.chunkCount;
            corpusVersion = o.corpusVersion;
          } else {
            failedCount += 1;
            if (failed.length < MAX_REPORTED_FAILURES) failed.push({ ...(o.id ? { id: o.id } : {}), message: o.message });
          }
        }
        done += batch.length;
        await ctx.progress(done, total);
      }
      if (inputsKey) await opts.inputs.dropInputs(inputsKey);
      return {
        documents: total,
        ingested,
        chunks,
        failedCount,
        failed,
        ...(ctx.resumeFrom > 0 ? { resumedFrom: ctx.resumeFrom } : {}),
        ...(corpusVersion !== undefined ? { corpusVersion } : {}),
      };
    },
  };
}
