import { isCluster, serverClockOffset, type RedisClient } from '@aicache/cache';
import createError from '@fastify/error';

/**
 * The state Redis did not answer in time, or dropped a write that reached it after its deadline: nothing was
 * changed, and a retry is safe. Rendered as 503 with Retry-After.
 */
export const StateUnavailable = createError<'STATE_UNAVAILABLE', 503, [what: string, detail: string]>(
  'STATE_UNAVAILABLE',
  '%s is unavailable: %s',
  503,
);

/**
 * The first lines of every state write script: ARGV[1] is the write's deadline in server epoch ms. A write that
 * reaches Redis after it (a paused server resumed, a reconnect resending a queued command) is refused, because
 * its caller has already been told that nothing was written.
 */
export const DEADLINE_GUARD = `
local deadline_ms = tonumber(ARGV[1])
local server_time = redis.call('TIME')
if tonumber(server_time[1]) * 1000 + math.floor(tonumber(server_time[2]) / 1000) > deadline_ms then
  return redis.error_reply('STATE_DEADLINE the write reached Redis after its deadline')
end
`;

export interface StateCallsOptions {
  /** What the state is, for error messages: 'document index', 'agent store'. */
  name: string;
  /** Upper bound of each call; writes carry a deadline this far ahead (capped below the client's commandTimeout). */
  timeoutMs: number;
  /** Retry-After of the 503, seconds. Default 1. */
  retryAfterSeconds?: number;
  /**
   * After each write, WAIT until this many replicas have it (STATE_WAIT_REPLICAS), so that a failover to one of them
   * keeps it. The write stands either way (it is on the primary): a shortfall is logged, not failed.
   */
  replication?: StateReplication;
}

export interface StateReplication {
  /** Replicas that must have a write before it is acknowledged; 0 = no WAIT. */
  replicas: number;
  /** Longest WAIT, ms. */
  timeoutMs: number;
  /** A key in the state's slot: on a Cluster, WAIT goes to the master of that slot (the one that ran the write). */
  slotKey: string;
  logger?: { warn(obj: object, msg?: string): void };
}

/** Room left between a write's deadline and the moment its caller gives up, besides the clock uncertainty. */
const SLACK_MS = 25;
/** Room for WAIT's round trip beyond its own timeout. */
const WAIT_SLACK_MS = 250;
/** How old a clock measurement may get before the next write measures again (in the background). */
const RECALIBRATE_MS = 5 * 60_000;

type Failure = InstanceType<typeof StateUnavailable>;

/**
 * Every call to the state Redis of a service: reads bounded in time, writes with a deadline checked by Redis
 * (scripts that start with DEADLINE_GUARD), the way the cache library's writes are. A caller told "503,
 * nothing was changed" can trust it: the client gives up only once the server's clock is past the deadline,
 * so the write can no longer land. Failures are StateUnavailable (503 + Retry-After).
 */
export class StateCalls {
  readonly name: string;
  readonly timeoutMs: number;
  private readonly retryAfter: string;
  private readonly replication: StateReplication | undefined;
  /** serverTime - localTime, ms; `uncertainty` bounds its error (half the round trip of the measurement). */
  private offset = 0;
  private uncertainty = 0;
  private calibratedAt = 0;
  private calibrating: Promise<boolean> | undefined;
  private readonly onReady = (): void => void this.calibrate();

  constructor(
    readonly client: RedisClient,
    opts: StateCallsOptions,
  ) {
    this.name = opts.name;
    this.timeoutMs = opts.timeoutMs;
    this.retryAfter = String(opts.retryAfterSeconds ?? 1);
    this.replication = opts.replication && opts.replication.replicas > 0 ? opts.replication : undefined;
    client.on('ready', this.onReady);
    if (client.status === 'ready') void this.calibrate();
  }

  /** Stops listening to the client (which stays its owner's). */
  detach(): void {
    this.client.off('ready', this.onReady);
  }

  /** A read (or a harmless write such as a TTL refresh), bounded by `timeoutMs`. */
  async read<T>(what: string, op: (client: RedisClient) => Promise<T>, timeoutMs = this.timeoutMs): Promise<T> {
    try {
      return await bounded(op(this.client), timeoutMs, () => `no answer to ${what} within ${timeoutMs} ms`);
    } catch (err) {
      throw this.failure(what, err);
    }
  }

  /**
   * A write: `op` runs a script that starts with DEADLINE_GUARD and passes `deadline` as ARGV[1]. The call waits
   * until the server's clock has surely passed the deadline before it gives up, so a 503 means not written.
   */
  async write<T>(what: string, op: (client: RedisClient, deadline: number) => Promise<T>): Promise<T> {
    const started = Date.now();
    const budget = this.writeBudget();
    if (this.calibratedAt === 0 && !(await this.calibrate(budget))) {
      throw this.unavailable(`${what} not sent: Redis did not answer TIME within ${budget} ms`);
    }
    if (Date.now() - this.calibratedAt > RECALIBRATE_MS) void this.calibrate();
    const left = budget - (Date.now() - started);
    if (left <= 0) throw this.unavailable(`${what} not sent: no time left of ${budget} ms`);
    const now = Date.now();
    const deadline = Math.floor(now + this.offset + left);
    const waitMs = left + Math.ceil(this.uncertainty) + SLACK_MS;
    let result: T;
    try {
      result = await bounded(op(this.client, deadline), waitMs, () => `no answer to ${what} within ${budget} ms; it was not applied`);
    } catch (err) {
      throw this.failure(what, err);
    }
    if (this.replication) await this.replicate(what, this.replication);
    return result;
  }

  /** WAIT for the replicas after a write; never fails the write, which the primary has already applied. */
  private async replicate(what: string, r: StateReplication): Promise<void> {
    const c = this.client;
    // On a Cluster, WAIT must reach the master that ran the write: a pipeline goes to the node of its keyed command.
    const wait = isCluster(c)
      ? c
          .pipeline()
          .exists(r.slotKey)
          .call('WAIT', r.replicas, r.timeoutMs)
          .exec()
          .then((res) => {
            const [err, acked] = res?.[1] ?? [new Error('no reply')];
            if (err) throw err;
            return Number(acked);
          })
      : c.call('WAIT', r.replicas, r.timeoutMs).then(Number);
    try {
      // WAIT answers by its own timeout; past it (plus a round trip) the primary is gone or stuck, and the write stands.
      const limit = r.timeoutMs + WAIT_SLACK_MS;
      const acked = await bounded(wait, limit, () => `no answer to WAIT within ${limit} ms`);
      if (acked < r.replicas) r.logger?.warn({ what, replicas: acked, wanted: r.replicas }, 'state write acknowledged before reaching the replicas STATE_WAIT_REPLICAS asks for');
    } catch (err) {
      r.logger?.warn({ what, err: { message: (err as Error).message } }, 'state write acknowledged without its replication confirmed');
    }
  }

  /**
   * Measures the server clock with TIME. Concurrent callers share one measurement; false when Redis did not
   * answer within `timeoutMs`.
   */
  calibrate(timeoutMs = this.timeoutMs): Promise<boolean> {
    this.calibrating ??= (async () => {
      try {
        const t0 = Date.now();
        const time = await bounded(this.client.time(), timeoutMs, () => 'TIME timed out');
        const t1 = Date.now();
        this.offset = serverClockOffset(time, t0, t1);
        this.uncertainty = (t1 - t0) / 2 + 1;
        this.calibratedAt = t1;
        return true;
      } catch {
        return false;
      } finally {
        this.calibrating = undefined;
      }
    })();
    return this.calibrating;
  }

  /** The write budget: `timeoutMs`, kept below the client's own command timeout so ioredis never gives up first. */
  private writeBudget(): number {
    // A Cluster client times out each node's command by the nodes' own option.
    const commandTimeout = isCluster(this.client) ? this.client.options.redisOptions?.commandTimeout : this.client.options.commandTimeout;
    const cap = commandTimeout ? commandTimeout - 4 * SLACK_MS - Math.ceil(this.uncertainty) : Infinity;
    return Math.max(1, Math.min(this.timeoutMs, cap));
  }

  private unavailable(detail: string, cause?: unknown): Failure {
    const err = new StateUnavailable(this.name, detail);
    if (cause !== undefined) err.cause = cause;
    Object.assign(err, { headers: { 'retry-after': this.retryAfter } });
    return err;
  }

  private failure(what: string, err: unknown): Failure {
    if (err instanceof StateUnavailable) return err;
    const message = err instanceof Error ? err.message : String(err);
    if (message.startsWith('STATE_DEADLINE')) return this.unavailable(`${what} reached Redis after its deadline and was dropped`, err);
    if (err instanceof TimeoutError) return this.unavailable(message, err);
    return this.unavailable(`${what} failed: ${message}`, err);
  }
}

class TimeoutError extends Error {}

function bounded<T>(promise: Promise<T>, ms: number, message: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(message())), ms);
  });
  promise.catch(() => undefined);
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
