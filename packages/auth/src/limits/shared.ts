import type { Cluster, Redis } from 'ioredis';

/** The state Redis the limits count in: a single node (or a Sentinel-managed one) or a Cluster. */
export type LimitsRedis = Redis | Cluster;

/**
 * A Redis call of the limits that failed or ran out of time. The limits answered without it (failing open), so this
 * is for logs and metrics only. `message` never carries a key, a username or an address.
 */
export interface LimitsRedisError {
  /** Which call: `requests.flush`, `logins.check`, `logins.fail`, `logins.succeed`, `inputs.consume`. */
  op: string;
  message: string;
}

export type OnLimitsRedisError = (error: LimitsRedisError) => void;

export class DeadlineError extends Error {
  constructor(ms: number) {
    super(`Redis did not answer within ${ms} ms`);
    this.name = 'DeadlineError';
  }
}

/**
 * `promise`, or a DeadlineError after `ms`. The promise itself is not cancelled (Redis may still run the command);
 * its late rejection is swallowed so it never surfaces as an unhandled rejection.
 */
export function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  promise.catch(() => undefined);
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new DeadlineError(ms)), ms);
    timer.unref?.();
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

/** True when the client can take a command now; false while it connects, reconnects or was closed. */
export function redisReady(redis: LimitsRedis): boolean {
  return redis.status === 'ready';
}

/** An error's message only: ioredis errors can carry the command and its arguments (keys, usernames) as fields. */
export function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Hands `error` to the caller's callback; a callback that throws must not turn a fail-open answer into a throw. */
export function report(onRedisError: OnLimitsRedisError | undefined, op: string, err: unknown): void {
  if (!onRedisError) return;
  try {
    onRedisError({ op, message: describe(err) });
  } catch {
    // the limits answer regardless
  }
}

export function clamp(n: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, n));
}

/** Whole seconds for a duration in ms (at least 1): rate-limiter-flexible counts windows in seconds. */
export function seconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

export function positiveInt(name: string, v: number, allowZero = false): number {
  if (!Number.isFinite(v) || !Number.isInteger(v) || v < 0 || (!allowZero && v === 0)) {
    throw new RangeError(`${name} must be a ${allowZero ? 'non-negative' : 'positive'} integer, got ${v}`);
  }
  return v;
}
