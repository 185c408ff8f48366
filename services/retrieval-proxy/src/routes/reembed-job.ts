import { Type, type Static } from 'typebox';
import type { ServiceTokens } from '@aicache/auth';
import { serviceTokenHeaders } from '@aicache/auth';
import { BadJobInput, JobCancelled, type JobContext, type JobKind } from '@aicache/jobs';
import type { RetrievalService } from '../domain/retrieval-service.js';
import type { ReembedDoc } from '../domain/retrieval-index.js';

export const ReembedBody = Type.Object(
  {
    model: Type.String({ minLength: 1, maxLength: 200, description: 'The embedding model to move the index to (a model the multimodal-worker serves; may be the active one, after an upgrade)' }),
    batchSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50, description: 'Documents embedded and staged per batch (progress is saved after each)' })),
  },
  { additionalProperties: false },
);

type Body = Static<typeof ReembedBody>;
interface ReembedInput {
  model: string;
  batchSize: number;
}

/** Rounds of catch-up then switch before the job gives up for now (it is tried again): writes never stopped meanwhile. */
const SWITCH_ROUNDS = 10;
/** Documents read per catch-up round. */
const CATCH_UP_BATCH = 200;

/** A failure that may pass (worker down or overloaded, a store away); a 4xx of the worker (unknown model) does not. */
function isTransient(err: unknown): boolean {
  const peer = (err as { peerStatus?: number }).peerStatus;
  if (peer !== undefined) return peer >= 500 || peer === 429 || peer === 408;
  const status = (err as { statusCode?: number }).statusCode;
  return status === undefined || status >= 500 || status === 429 || status === 408;
}

/**
 * The re-embed job: every chunk of every tenant embedded again with another model, into a staging generation searches
 * do not read, then one atomic switch (the active model, the live vectors and the corpus stamp move together). Until
 * the switch searches answer from the old vectors with the old model; after it every query and ingest uses the new one.
 * Documents written or deleted while it runs are staged again before the switch, which the index refuses while any is
 * left. Cancelled or failed for good (bad input, or a passing failure on the last try): the staging generation is
 * dropped and nothing switches.
 */
export function reembedJob(opts: {
  retrieval: RetrievalService;
  tokens: ServiceTokens;
  /** Whether a job still waits or runs (a staging generation held by a job that does neither is taken over). */
  isLive: (jobId: string) => Promise<boolean>;
  logger?: { warn(obj: object, msg?: string): void; info(obj: object, msg?: string): void };
}): JobKind<ReembedInput> {
  const index = opts.retrieval.index;
  return {
    name: 'reembed',
    summary: 'Re-embed every document with another model (admin)',
    description:
      'Starts a job that embeds the chunks of every document of every tenant with `model` (through the multimodal-worker) into a ' +
      'staging generation, reporting progress (chunks done of total), then switches the index to it in one atomic step: until then ' +
      'searches answer from the current vectors and model, afterwards queries and ingests use the new model (GET /api/v1/index shows ' +
      'which). Documents ingested or deleted meanwhile are caught up before the switch. Cancel drops the staging generation; an unknown ' +
      'model fails the job at once. One re-embed at a time (another start answers 409). Needs the admin scope.',
    body: ReembedBody,
    scope: 'admin',
    exclusive: true,
    prepare(raw) {
      const body = raw as Body;
      return { model: body.model, batchSize: body.batchSize ?? 50 };
    },
    async run(ctx: JobContext<ReembedInput>) {
      const { model: asked, batchSize } = ctx.input;
      if (typeof asked !== 'string' || asked.length === 0) throw new BadJobInput('the job names no model');
      const call = { requestId: `job-${ctx.id}`, credentials: () => serviceTokenHeaders(opts.tokens, ctx.principal) };
      const embed = async (texts: string[]) => {
        try {
          return await opts.retrieval.embedWith(texts, asked, call);
        } catch (err) {
          if (isTransient(err)) throw err;
          throw new BadJobInput(`the worker refused model '${asked}': ${(err as Error).message}`);
        }
      };
      // The model is checked, and its dimension learned, before anything is claimed or staged.
      const probe = await embed(['re-embed dimension probe']);
      const model = probe.model;
      const dimensions = probe.vectors[0]!.length;
      const previous = (await index.stamp()).model ?? null;

      let claim = await index.reembed.claim({ job: ctx.id, model, dimensions });
      if (claim.outcome === 'busy') {
        if (await opts.isLive(claim.holder)) throw new BadJobInput(`re-embed job ${claim.holder} is under way; wait for it or cancel it`);
        // Left by a job that failed for good: its staging generation is dropped and this one starts afresh.
        opts.logger?.warn({ job: ctx.id, holder: claim.holder }, 're-embed: taking over the staging generation of a job that no longer runs');
        await index.reembed.abort(claim.holder);
        claim = await index.reembed.claim({ job: ctx.id, model, dimensions });
        if (claim.outcome === 'busy') throw new BadJobInput(`re-embed job ${claim.holder} is under way; wait for it or cancel it`);
      }
      const state = await index.reembed.state();
      if (claim.outcome === 'resumed' && (state?.model !== model || state.dimensions !== dimensions)) {
        throw new BadJobInput(`the worker now answers model '${asked}' as ${model} (${dimensions} dimensions), not as when the job began`);
      }

      try {
        let stagedCount = 0;
        const stage = async (docs: ReembedDoc[]) => {
          const texts = docs.flatMap((d) => d.texts);
          if (texts.length === 0) return;
          const { vectors } = await embed(texts);
          let at = 0;
          for (const d of docs) {
            const own = vectors.slice(at, at + d.texts.length);
            at += d.texts.length;
            if (own.some((v) => v.length !== dimensions)) throw new BadJobInput(`model ${model} answered vectors of another dimension than ${dimensions}`);
            const r = await index.reembed.stage(ctx.id, d.tenant, d.meta, model, own);
            if (r === -1) throw new BadJobInput('the re-embed no longer holds its staging generation (cancelled or taken over)');
            if (r === 1) stagedCount += 1;
          }
        };

        // The pass: every document, in a stable order; those a previous run of this job staged are skipped.
        const refs = await index.reembed.refs();
        const total = refs.reduce((n, r) => n + r.chunks, 0);
        let done = 0;
        let reported = Math.min(ctx.resumeFrom, total);
        // Progress reaches total only with the switch: up to it, at most total - 1.
        const report = async (n: number) => {
          const capped = Math.min(n, Math.max(total - 1, 0));
          if (capped > reported || n === 0) await ctx.progress((reported = Math.max(reported, capped)), total);
        };
        await report(0);
        for (let i = 0; i < refs.length; i += batchSize) {
          await ctx.checkCancelled();
          const batch = refs.slice(i, i + batchSize);
          const docs = await index.reembed.load(ctx.id, batch);
          await stage(docs.filter((d) => !d.staged));
          done += batch.reduce((n, r) => n + r.chunks, 0);
          await report(done);
        }

        // Catch-up and switch: documents written since they were staged are staged again; the switch succeeds only
        // when none is left, in the same atomic step.
        let caughtUp = 0;
        const catchUp = async () => {
          for (let round = 0; round < 100; round++) {
            await ctx.checkCancelled();
            const pending = await index.reembed.pending(ctx.id, CATCH_UP_BATCH);
            if (pending.length === 0) return;
            const docs = await index.reembed.load(ctx.id, pending);
            caughtUp += docs.length;
            await stage(docs);
          }
        };
        await catchUp();
        await index.reembed.settle(ctx.id);
        for (let round = 0; round < SWITCH_ROUNDS; round++) {
          await ctx.checkCancelled();
          const switched = await index.reembed.switchModel(ctx.id);
          if (switched.outcome === 'lost') throw new BadJobInput('the re-embed no longer holds its staging generation (cancelled or taken over)');
          if (switched.outcome === 'switched') {
            await ctx.progress(total, total);
            opts.logger?.info({ job: ctx.id, previous, model, dimensions, corpus: switched.stamp }, 're-embed: the index switched model');
            return {
              previousModel: previous,
              model,
              dimensions,
              documents: refs.length,
              chunks: total,
              staged: stagedCount,
              caughtUp,
              corpusVersion: switched.stamp.version,
              ...(ctx.resumeFrom > 0 ? { resumedFrom: ctx.resumeFrom } : {}),
            };
          }
          await catchUp();
        }
        // Writes never paused long enough: a passing condition, the job is tried again (from its staged documents).
        throw new Error(`documents kept changing: no switch after ${SWITCH_ROUNDS} catch-up rounds`);
      } catch (err) {
        // Kept for the next try after a passing failure; dropped when none will come (cancel, bad input, the last try).
        if (err instanceof JobCancelled || err instanceof BadJobInput || ctx.lastAttempt) {
          await index.reembed.abort(ctx.id).catch((e: unknown) => opts.logger?.warn({ job: ctx.id, err: { message: (e as Error).message } }, 're-embed: staging not dropped'));
        }
        throw err;
      }
    },
  };
}
