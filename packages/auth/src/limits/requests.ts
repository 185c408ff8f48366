import type { Principal } from '../principal.js';
import { isCluster } from '@aicache/cache';
import { positiveInt, redisReady, report, within, type LimitsRedis, type OnLimitsRedisError } from './shared.js';

export interface RequestRateSettings {
  /** Requests one principal may make per window, across all replicas together. 0 turns the limit off. Default 1200. */
  limit: number;
  /**
   * Window length in ms. Windows are fixed and aligned on multiples of it since the epoch, so every replica agrees on
   * them without talking; a client may use `limit` at the end of one window and again at the start of the next.
   * Default 60_000.
   */
  windowMs: number;
  /**
   * How often each process sends its counts to Redis (one pipeline for all principals) and learns the totals of the
   * other replicas. Shorter: less overshoot, more Redis commands. Default 50.
   */
  flushIntervalMs: number;
}

export const REQUEST_RATE_DEFAULTS: Readonly<RequestRateSettings> = Object.freeze({ limit: 1200, windowMs: 60_000, flushIntervalMs: 50 });

export interface RequestRateOptions extends Partial<RequestRateSettings> {
  redis: LimitsRedis;
  /** Prepended to every key, e.g. `aicache:auth:`. */
  keyPrefix: string;
  /** A flush that Redis has not answered within this is counted as failed. Default 250. */
  timeoutMs?: number;
  /** Called when flushes start failing (not on every failed flush of an outage) and for nothing else. */
  onRedisError?: OnLimitsRedisError;
}

/**
 * `degraded`: the last flush failed, so the decision rests on this process's own counts (plus the totals Redis gave
 * before the trouble): the limit then holds per process, not across replicas. A refusal is never degraded: this
 * process alone already saw the principal use the whole limit.
 */
export type RequestDecision = { allowed: true; degraded?: true } | { allowed: false; retryAfterMs: number };

const ALLOWED: RequestDecision = Object.freeze({ allowed: true });
const ALLOWED_DEGRADED: RequestDecision = Object.freeze({ allowed: true, degraded: true });

interface Counter {
  window: number;
  /** The total Redis answered at this process's last acknowledged flush (every replica's counts flushed by then). */
  remote: number;
  /** Counted here since the last flush was sent. */
  pending: number;
  /** Counted here and sent in the flush in flight, not yet in `remote`. */
  sending: number;
  /** Everything this process allowed in the window: a lower bound of the true total whatever Redis does. */
  own: number;
}

interface Batch {
  key: string;
  counter: Counter;
  n: number;
}

/** A flush Redis has not settled after this long is given up on, so one lost reply cannot stop flushing for good. */
const ABANDON_AFTER_MS = 5_000;

/**
 * Request rate per principal, counted across replicas in Redis without a Redis round trip per request.
 *
 * `check` is synchronous: it decides on the window's total as Redis gave it at this process's last flush plus what
 * this process counted since, then counts the request locally. Every `flushIntervalMs` one pipeline sends
 * `INCRBY <window key> <local count>` (and a PEXPIREAT past the window's end) for every principal seen since, and
 * the totals it answers become the new base. Refused requests are not counted.
 *
 * Overshoot bound: when a replica decides, the requests it cannot know of are those the other replicas allowed and
 * have not flushed yet (up to one flush interval T of their traffic, plus a Redis round trip) and those they
 * flushed after this replica's own last flush was answered (up to another T). With R replicas sharing a
 * principal's λ requests/s evenly, the total allowed in a window is therefore at most
 *     limit + λ * (R - 1) / R * (2 * T + RTT)
 * (e.g. λ = 400/s, R = 2, T = 50 ms, RTT = 1 ms: about 20 over), and never more than R * limit, since each replica
 * alone stops at `limit`. T is the real interval between flushes, which a blocked event loop stretches. Windows
 * follow each replica's clock: clocks apart by s ms let a principal gain up to s ms of traffic at a window's edge.
 * While Redis is unreachable each replica enforces `limit` on its own counts (degraded), and the counts it could
 * not send go out once Redis answers again, within the same window.
 */
export class RequestRateLimiter {
  readonly settings: Readonly<RequestRateSettings>;
  private readonly redis: LimitsRedis;
  private readonly prefix: string;
  private readonly timeoutMs: number;
  private readonly onRedisError: OnLimitsRedisError | undefined;
  private readonly counters = new Map<string, Counter>();
  /** Counters of a window that ended with counts not yet sent (replaced by check() before a flush took them). */
  private readonly leftovers: Array<{ key: string; counter: Counter }> = [];
  private readonly timer: NodeJS.Timeout | undefined;
  private flushSeq = 0;
  /** The flush in flight, if any: its number and when it was sent. */
  private inFlight: { seq: number; at: number; done: Promise<void> } | undefined;
  private failing = false;
  private closed = false;

  constructor(opts: RequestRateOptions) {
    const s: RequestRateSettings = {
      limit: opts.limit ?? REQUEST_RATE_DEFAULTS.limit,
      windowMs: opts.windowMs ?? REQUEST_RATE_DEFAULTS.windowMs,
      flushIntervalMs: opts.flushIntervalMs ?? REQUEST_RATE_DEFAULTS.flushIntervalMs,
    };
    positiveInt('requests.limit', s.limit, true);
    positiveInt('requests.windowMs', s.windowMs);
    positiveInt('requests.flushIntervalMs', s.flushIntervalMs);
    this.settings = Object.freeze(s);
    this.redis = opts.redis;
    this.prefix = `${opts.keyPrefix}rl:req:`;
    this.timeoutMs = positiveInt('timeoutMs', opts.timeoutMs ?? 250);
    this.onRedisError = opts.onRedisError;
    if (s.limit > 0) {
      this.timer = setInterval(() => void this.flush(), s.flushIntervalMs);
      this.timer.unref();
    }
  }

  /** True while flushes fail: decisions then hold the limit per process only. */
  get degraded(): boolean {
    return this.failing;
  }

  /** Decides on one request of `principalKey` (see `requestRateKey`) and counts it when allowed. Never touches Redis. */
  check(principalKey: string, now = Date.now()): RequestDecision {
    const { limit, windowMs } = this.settings;
    if (limit <= 0 || this.closed) return ALLOWED;
    const window = Math.floor(now / windowMs);
    let c = this.counters.get(principalKey);
    if (!c || c.window !== window) {
      // The last window's counts not sent yet still go to its key at the next flush.
      if (c && c.pending > 0) this.leftovers.push({ key: principalKey, counter: c });
      c = { window, remote: 0, pending: 0, sending: 0, own: 0 };
      this.counters.set(principalKey, c);
    }
    const total = Math.max(c.remote + c.sending + c.pending, c.own);
    if (total >= limit) return { allowed: false, retryAfterMs: Math.max(1, (window + 1) * windowMs - now) };
    c.pending++;
    c.own++;
    return this.failing ? ALLOWED_DEGRADED : ALLOWED;
  }

  /**
   * Sends the counts gathered since the last flush and takes in the totals. Runs on its own every flushIntervalMs;
   * callable directly (tests, shutdown). Never throws; resolves once this flush settled or timed out.
   */
  async flush(now = Date.now()): Promise<void> {
    if (this.inFlight) {
      if (now - this.inFlight.at < ABANDON_AFTER_MS) return;
      this.abandon(this.inFlight.seq);
    }
    const window = Math.floor(now / this.settings.windowMs);
    const batch: Batch[] = [];
    for (const { key, counter } of this.leftovers.splice(0)) batch.push({ key, counter, n: counter.pending });
    for (const [key, c] of this.counters) {
      if (c.window < window) {
        // A window just over: its pending counts are still sent (to its own key), then it is forgotten.
        if (c.pending > 0) batch.push({ key, counter: c, n: c.pending });
        this.counters.delete(key);
        continue;
      }
      if (c.pending > 0) batch.push({ key, counter: c, n: c.pending });
    }
    if (batch.length === 0) return;
    if (!redisReady(this.redis)) {
      // Nothing sent: the counts stay pending and go out once Redis is back (the same window only).
      this.fail(new Error(`Redis connection is ${this.redis.status}`));
      return;
    }
    for (const b of batch) {
      b.counter.sending += b.n;
      b.counter.pending -= b.n;
    }
    const seq = ++this.flushSeq;
    const sent = this.send(batch).then(
      (totals) => this.settle(seq, batch, totals),
      (err: unknown) => this.settle(seq, batch, err instanceof Error ? err : new Error(String(err))),
    );
    const done = sent.then(() => {
      if (this.inFlight?.seq === seq) this.inFlight = undefined;
    });
    this.inFlight = { seq, at: now, done };
    try {
      await within(done, this.timeoutMs);
    } catch (err) {
      // Still in flight: further flushes wait for it (up to ABANDON_AFTER_MS); decisions go on locally meanwhile.
      this.fail(err);
    }
  }

  /** Stops the flush timer after sending what is pending (bounded by timeoutMs). Later checks allow everything. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.inFlight) await within(this.inFlight.done, this.timeoutMs).catch(() => undefined);
    await this.flush();
    this.closed = true;
  }

  private async send(batch: Batch[]): Promise<number[]> {
    const keys = batch.map((b) => `${this.prefix}${b.key}:${b.counter.window}`);
    // A window's key lives on until the end of the next window (room for replicas' clocks to differ), then goes.
    const expiry = batch.map((b) => (b.counter.window + 2) * this.settings.windowMs);
    if (isCluster(this.redis)) {
      // A Cluster pipeline must stay within one slot; separate commands are written in the same tick per node.
      const c = this.redis;
      return Promise.all(
        batch.map(async (b, i) => {
          const key = keys[i]!;
          const [total] = await Promise.all([c.incrby(key, b.n), c.pexpireat(key, expiry[i]!)]);
          return total;
        }),
      );
    }
    const p = this.redis.pipeline();
    batch.forEach((b, i) => {
      p.incrby(keys[i]!, b.n);
      p.pexpireat(keys[i]!, expiry[i]!);
    });
    const replies = (await p.exec()) ?? [];
    return batch.map((_, i) => {
      const [err, total] = replies[2 * i] ?? [new Error('no reply'), null];
      if (err) throw err;
      return Number(total);
    });
  }

  private settle(seq: number, batch: Batch[], result: number[] | Error): void {
    if (seq !== this.flushSeq || this.inFlight?.seq !== seq) return; // abandoned: its counts were already dropped
    for (const [i, b] of batch.entries()) {
      const c = b.counter;
      c.sending = Math.max(0, c.sending - b.n);
      // Failed: the counts may or may not have landed; `own` keeps them in this process's decisions either way.
      if (!(result instanceof Error)) c.remote = Math.max(c.remote, result[i] ?? 0);
    }
    if (result instanceof Error) this.fail(result);
    else this.failing = false;
  }

  private abandon(seq: number): void {
    this.inFlight = undefined;
    this.flushSeq = seq + 1;
    for (const c of this.counters.values()) c.sending = 0;
    this.fail(new Error(`a flush was not answered within ${ABANDON_AFTER_MS} ms`));
  }

  private fail(err: unknown): void {
    if (this.failing) return;
    this.failing = true;
    report(this.onRedisError, 'requests.flush', err);
  }
}

/**
 * The key a principal's requests are counted under: the API key for key principals (each key its own budget), the
 * user for sessions and service tokens (a user's sessions share one budget, and a service acting for a user spends
 * that user's), and one bucket for the bootstrap token and for development mode.
 */
export function requestRateKey(principal: Principal): string {
  switch (principal.kind) {
    case 'key':
      return `key:${principal.credentialId ?? principal.userId ?? 'unknown'}`;
    case 'session':
    case 'service':
      if (principal.userId) return `user:${principal.userId}`;
      return `${principal.kind}:${principal.credentialId ?? 'unknown'}`;
    case 'bootstrap':
      return 'bootstrap';
    case 'anonymous':
      return 'anonymous';
  }
}
