/**
 * Limits per principal, counted in the state Redis so that they hold across replicas: the request rate on every
 * request, failed logins with lockout, and embedding inputs per minute. Framework-free: the auth plugin calls it and
 * turns refusals into 429 answers with Retry-After (seconds, rounded up from `retryAfterMs`).
 *
 * Every check answers within `timeoutMs` and never throws on Redis trouble: it fails open (allowed, `degraded: true`)
 * and reports the trouble through `onRedisError`.
 */
import { InputsLimiter, type InputsSettings } from './limits/inputs.js';
import { LoginLimiter, type LoginSettings } from './limits/logins.js';
import { RequestRateLimiter, type RequestRateSettings } from './limits/requests.js';
import type { LimitsRedis, OnLimitsRedisError } from './limits/shared.js';

export { RequestRateLimiter, REQUEST_RATE_DEFAULTS, requestRateKey, type RequestDecision, type RequestRateOptions, type RequestRateSettings } from './limits/requests.js';
export { LoginLimiter, LOGIN_DEFAULTS, type LoginAttempt, type LoginDecision, type LoginLimiterOptions, type LoginSettings } from './limits/logins.js';
export { InputsLimiter, INPUTS_DEFAULTS, type InputsDecision, type InputsLimiterOptions, type InputsSettings } from './limits/inputs.js';
export type { LimitsRedis, LimitsRedisError, OnLimitsRedisError } from './limits/shared.js';

export interface LimitsOptions {
  /** The state Redis (ioredis `Redis` or `Cluster`); the limits never close it. */
  redis: LimitsRedis;
  /** Prepended to every key, e.g. `aicache:auth:` (keys are then `aicache:auth:rl:…`). */
  keyPrefix: string;
  /** Bound on any Redis wait of a check; past it the check allows (degraded). Default 250. */
  timeoutMs?: number;
  /** Told of Redis trouble (the op and the error message, no keys or usernames); for logs and metrics. */
  onRedisError?: OnLimitsRedisError;
  /** Request rate per principal; defaults in REQUEST_RATE_DEFAULTS. */
  requests?: Partial<RequestRateSettings>;
  /** Failed logins per username and per address; defaults in LOGIN_DEFAULTS. */
  logins?: Partial<LoginSettings>;
  /** Embedding inputs per principal; defaults in INPUTS_DEFAULTS. */
  inputs?: Partial<InputsSettings>;
}

/** The three limits on one Redis, with one set of options. */
export class Limits {
  readonly requests: RequestRateLimiter;
  readonly logins: LoginLimiter;
  readonly inputs: InputsLimiter;

  constructor(opts: LimitsOptions) {
    const common = { redis: opts.redis, keyPrefix: opts.keyPrefix, timeoutMs: opts.timeoutMs ?? 250, onRedisError: opts.onRedisError };
    this.requests = new RequestRateLimiter({ ...common, ...opts.requests });
    this.logins = new LoginLimiter({ ...common, ...opts.logins });
    this.inputs = new InputsLimiter({ ...common, ...opts.inputs });
  }

  /** Stops the request-rate flush timer after a last flush (bounded by timeoutMs). Does not close the Redis client. */
  async close(): Promise<void> {
    await this.requests.close();
  }
}
