import { randomUUID } from 'node:crypto';
import type { JobsSettings, RedisClient } from './queue.js';

/** Inputs pushed per RPUSH when a job's input list is written (bounds each call's size on a shared connection). */
const PUSH_GROUP = 1000;

/**
 * A large job's input kept beside its BullMQ record on the state Redis, under the queue's prefix (so on a Cluster it
 * shares the queue's slot); the job record holds only the key, so reading a job (every poll of its progress, every
 * line of a list) never carries megabytes.
 *
 * - `<prefix>:input:<job id>:<nonce>`: a LIST of the inputs (or a STRING: one text), written at submission; the nonce
 *   keeps two equal submissions racing each other from writing into the same list (the loser's list is dropped).
 *
 * Inputs live `keepSeconds` from when they are written or touched: as long as a failed job can still be retried.
 */
export class InputStore {
  constructor(
    protected readonly redis: RedisClient,
    protected readonly prefix: string,
    /** How long inputs live (seconds): as long as a failed job can still be retried. */
    protected readonly keepSeconds: number,
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
}

/** How long a job's inputs (and unfinished output) are kept: as long as a failed job can be retried or a finished one read. */
export function inputsKeepSeconds(settings: JobsSettings): number {
  return Math.max(settings.keepFailedSeconds, settings.keepCompletedSeconds);
}
