import type { FastifyInstance } from 'fastify';
import { BadJobInput, type JobContext } from '@aicache/jobs';

/** Spends embedding inputs from a principal's per-minute budget: the auth plugin's spendInputs. */
export type SpendInputs = FastifyInstance['auth']['spendInputs'];

/**
 * A job's batch spends its inputs from the budget of the credential that started the job
 * (EMBEDDINGS_INPUTS_PER_MINUTE), as the synchronous routes spend theirs, so a job is no way around the limit. When
 * the budget is spent the job is postponed until it has room again (no try used up, its slot free for other jobs),
 * and resumes after its stored batches.
 */
export async function spendBatch(ctx: JobContext<unknown>, spend: SpendInputs, count: number): Promise<void> {
  const verdict = await spend(ctx.principal, count);
  if (verdict.allowed) return;
  if (verdict.tooLarge !== undefined) {
    throw new BadJobInput(
      `a batch of ${count} inputs is more than the ${verdict.tooLarge} allowed per minute (EMBEDDINGS_INPUTS_PER_MINUTE): submit the job with batchSize at most ${verdict.tooLarge}`,
    );
  }
  await ctx.postpone(verdict.retryAfterMs);
}
