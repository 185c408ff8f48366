import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { clamp, positiveInt, report, seconds, within, type LimitsRedis, type OnLimitsRedisError } from './shared.js';

export interface InputsSettings {
  /** Embedding inputs one principal may send per window, across replicas. 0 turns the limit off. Default 1000. */
  limit: number;
  /** The window, counted from the principal's first input in it (whole seconds). Default 60_000. */
  windowMs: number;
}

export const INPUTS_DEFAULTS: Readonly<InputsSettings> = Object.freeze({ limit: 1000, windowMs: 60_000 });

export interface InputsLimiterOptions extends Partial<InputsSettings> {
  redis: LimitsRedis;
  /** Prepended to every key, e.g. `aicache:auth:`. */
  keyPrefix: string;
  /** Every call answers within this (failing open past it). Default 250. */
  timeoutMs?: number;
  onRedisError?: OnLimitsRedisError;
}

/**
 * - `allowed: true`: go on; `remaining` inputs are left in the window (absent when degraded or the limit is off).
 *   `degraded`: Redis did not answer in time, so this batch was not counted.
 * - `reason: 'rate'`: the window's budget cannot take the batch now: answer 429 with Retry-After. Nothing was counted.
 * - `reason: 'batch-too-large'`: the batch alone exceeds the whole budget (`limit`): no wait helps, answer 4xx.
 */
export type InputsDecision =
  | { allowed: true; remaining?: number; degraded?: true }
  | { allowed: false; reason: 'rate'; retryAfterMs: number }
  | { allowed: false; reason: 'batch-too-large'; limit: number };

const ALLOWED: InputsDecision = Object.freeze({ allowed: true });
const ALLOWED_DEGRADED: InputsDecision = Object.freeze({ allowed: true, degraded: true });

/**
 * Embedding inputs per principal per window: a batch of N inputs spends N points, all or nothing (a refused batch
 * is handed back, so retrying with a smaller one works). One Redis round trip per embeddings call, which is small
 * beside computing the embeddings. Never throws on Redis trouble: answers within timeoutMs, allowing.
 */
export class InputsLimiter {
  readonly settings: Readonly<InputsSettings>;
  private readonly limiter: RateLimiterRedis | undefined;
  private readonly timeoutMs: number;
  private readonly onRedisError: OnLimitsRedisError | undefined;

  constructor(opts: InputsLimiterOptions) {
    const s: InputsSettings = {
      limit: positiveInt('inputs.limit', opts.limit ?? INPUTS_DEFAULTS.limit, true),
      windowMs: positiveInt('inputs.windowMs', opts.windowMs ?? INPUTS_DEFAULTS.windowMs),
    };
    this.settings = Object.freeze(s);
    this.timeoutMs = positiveInt('timeoutMs', opts.timeoutMs ?? 250);
    this.onRedisError = opts.onRedisError;
    if (s.limit > 0) {
      this.limiter = new RateLimiterRedis({
        storeClient: opts.redis,
        rejectIfRedisNotReady: true,
        keyPrefix: `${opts.keyPrefix}rl:inputs`,
        points: s.limit,
        duration: seconds(s.windowMs),
      });
    }
  }

  /**
   * Spends `inputs` points of `principalKey` (see `requestRateKey`). `inputs` must be a non-negative integer (a
   * RangeError otherwise: a programming error, not Redis trouble); 0 is allowed without asking Redis.
   */
  async consume(principalKey: string, inputs: number): Promise<InputsDecision> {
    positiveInt('inputs', inputs, true);
    const limiter = this.limiter;
    if (!limiter || inputs === 0) return ALLOWED;
    const { limit, windowMs } = this.settings;
    if (inputs > limit) return { allowed: false, reason: 'batch-too-large', limit };
    try {
      const res = await within(
        limiter.consume(principalKey, inputs).catch(async (e: unknown) => {
          if (!(e instanceof RateLimiterRes)) throw e;
          // Over the budget: the batch was counted by the consume, so hand it back before refusing.
          await limiter.reward(principalKey, inputs);
          return e;
        }),
        this.timeoutMs,
      );
      if (res.consumedPoints > limit) {
        return { allowed: false, reason: 'rate', retryAfterMs: clamp(res.msBeforeNext, 1, seconds(windowMs) * 1000) };
      }
      return { allowed: true, remaining: res.remainingPoints };
    } catch (err) {
      report(this.onRedisError, 'inputs.consume', err);
      return ALLOWED_DEGRADED;
    }
  }
}
