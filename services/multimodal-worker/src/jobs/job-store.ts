import { randomUUID } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { RedisClient } from '@aicache/cache';
import type { JobRouteHelpers } from '@aicache/jobs';
import { errors } from '@aicache/service-kit';

/** Inputs pushed per RPUSH when a job's input list is written (bounds each call's size on a shared connection). */
const PUSH_GROUP = 1000;

/**
 * What a large job keeps beside its BullMQ record on the state Redis, under the queue's prefix (so on a Cluster
 * it shares the queue's slot): its input list, and its output per batch. The job record holds only the keys, so
 * reading a job (every poll of its progress) never carries tens of megabytes.
 *
 * - `<prefix>:input:<job id>:<nonce>`: a LIST of the inputs (or a STRING: one text), written at submission; the nonce keeps two equal
 *   submissions racing each other from writing into the same list (the loser's list is dropped).
 * - `<prefix>:out:<job id>:<batch>`: one STRING per batch, written once the batch is done; its presence is what a
 *   resumed run trusts, so a batch is never half-written (one SET).
 */
export class JobStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    /** How long inputs and unfinished output live (seconds): as long as a failed job can still be retried. */
    private readonly keepSeconds: number,
  ) {}

  /** Writes the inputs to a new list; answers its key. */
  async putInputs(jobId: string, inputs: readonly string[]): Promise<string> {
    const key = `${this.prefix}:input:${jobId}:${randomUUID()}`;
    try {
      for (let from = 0; from < inputs.length; from += PUSH_GROUP) {
        await this.redis.rpush(key, ...inputs.slice(from, from + PUSH_GROUP));
      }
      await this.redis.expire(key, this.keepSeconds);
    } catch (err) {
      await this.redis.del(key).catch(() => undefined);
      throw err;
    }
    return key;
  }

  /** Writes one text (a document to process) to a new key; answers its key. */
  async putText(jobId: string, text: string): Promise<string> {
    const key = `${this.prefix}:input:${jobId}:${randomUUID()}`;
    await this.redis.set(key, text, 'EX', this.keepSeconds);
    return key;
  }

  /** The text under this key, or undefined when it is gone. */
  async text(key: string): Promise<string | undefined> {
    return (await this.redis.get(key)) ?? undefined;
  }

  /** Inputs [from, to) of a job, or undefined when the list is gone (expired, or the job already completed). */
  async inputs(key: string, from: number, to: number): Promise<string[] | undefined> {
    const items = await this.redis.lrange(key, from, to - 1);
    if (items.length !== to - from) return undefined;
    return items;
  }

  /** Keeps the inputs for another retention period from now; false when they are gone. */
  async touchInputs(key: string): Promise<boolean> {
    return (await this.redis.expire(key, this.keepSeconds)) === 1;
  }

  async dropInputs(key: string): Promise<void> {
    await this.redis.del(key);
  }

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
