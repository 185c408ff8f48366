import type { FastifyRequest } from 'fastify';
import { InputStore, type JobRouteHelpers } from '@aicache/jobs';
import { errors } from '@aicache/service-kit';

/**
 * What a large job of the worker keeps beside its BullMQ record on the state Redis: its inputs (InputStore), and its
 * output per batch.
 *
 * - `<prefix>:out:<job id>:<batch>`: one STRING per batch, written once the batch is done; its presence is what a
 *   resumed run trusts, so a batch is never half-written (one SET).
 */
export class JobStore extends InputStore {
  private outKey(jobId: string, batch: number): string {
    return `${this.prefix}:out:${jobId}:${batch}`;
  }

  private tokensKey(jobId: string): string {
    return `${this.prefix}:out:${jobId}:tokens`;
  }

  /**
   * Stores one batch's output and its token count in one MULTI (with the retention of an unfinished job), so a
   * batch done twice (a run that stopped before saving its progress) counts once.
   */
  async putBatch(jobId: string, batch: number, bytes: Buffer, tokens = 0): Promise<void> {
    const answers = await this.redis
      .multi()
      .set(this.outKey(jobId, batch), bytes, 'EX', this.keepSeconds)
      .hset(this.tokensKey(jobId), String(batch), String(tokens))
      .expire(this.tokensKey(jobId), this.keepSeconds)
      .exec();
    const failed = answers?.find(([err]) => err);
    if (!answers || failed) throw (failed?.[0] as Error | undefined) ?? new Error('the batch was not stored (transaction aborted)');
  }

  /** Tokens of the job's stored batches. */
  async tokens(jobId: string): Promise<number> {
    const values = await this.redis.hvals(this.tokensKey(jobId));
    return values.reduce((n, v) => n + Number(v), 0);
  }

  /** Byte length of one stored batch (0 when missing). */
  async batchBytes(jobId: string, batch: number): Promise<number> {
    return this.redis.strlen(this.outKey(jobId, batch));
  }

  /** The number of leading batches (of the first `count`) whose output is stored: where a resumed run may start. */
  async storedPrefix(jobId: string, count: number): Promise<number> {
    if (count === 0) return 0;
    // One round trip: the keys share the queue's hash tag, so a Cluster pipeline goes to one node.
    const pipe = this.redis.pipeline();
    for (let b = 0; b < count; b++) pipe.exists(this.outKey(jobId, b));
    const answers = (await pipe.exec()) ?? [];
    const missing = answers.findIndex(([err, n]) => err || n !== 1);
    return missing < 0 ? count : missing;
  }

  /** One batch's whole output; undefined when it is gone. */
  async batch(jobId: string, batch: number): Promise<Buffer | undefined> {
    return (await this.redis.getBuffer(this.outKey(jobId, batch))) ?? undefined;
  }

  /** Bytes [start, end) of one batch's output; undefined when the batch is gone (or shorter than it should be). */
  async readBatch(jobId: string, batch: number, start: number, end: number): Promise<Buffer | undefined> {
    const bytes = await this.redis.getrangeBuffer(this.outKey(jobId, batch), start, end - 1);
    return bytes.length === end - start ? bytes : undefined;
  }

  /** Gives every batch of a finished job the retention of the job record itself. */
  async expireBatches(jobId: string, count: number, seconds: number): Promise<void> {
    const pipe = this.redis.pipeline();
    for (let b = 0; b < count; b++) pipe.expire(this.outKey(jobId, b), seconds);
    pipe.expire(this.tokensKey(jobId), seconds);
    const answers = (await pipe.exec()) ?? [];
    const failed = answers.find(([err]) => err);
    if (failed) throw failed[0] as Error;
  }
}

/**
 * The request tenant's completed job of `kind` (the page routes read only those): 404 for an unknown id, another
 * tenant's or another kind's job; 409 naming its state while it has not completed.
 */
export async function completedJob(helpers: JobRouteHelpers, request: FastifyRequest, id: string, kind: string, what: string): ReturnType<JobRouteHelpers['mine']> {
  let job = await helpers.mine(request, id);
  if (job.name !== kind) throw new errors.NotFound(`${kind} job`, id);
  const state = await helpers.bounded('reading the job', () => job.getState());
  // Read just before it completed (its state is read after it): read it again, with its result.
  if (state === 'completed' && !job.finishedOn) job = await helpers.mine(request, id);
  if (state !== 'completed') {
    const shown = state === 'failed' && job.failedReason === 'cancelled' ? 'cancelled' : state;
    throw new errors.Conflict(`job '${id}' is ${shown}: its ${what} can be read once it has completed`);
  }
  return job;
}
