import type { Principal } from './principal.js';

export type LimitVerdict = { allowed: true } | { allowed: false; retryAfterMs: number };

/** The limits the auth plugin and the services ask, counted in Redis so they hold across replicas. */
export interface PrincipalLimits {
  /** Request rate per credential; synchronous (counted in process, flushed to Redis in batches). */
  request(principal: Principal): LimitVerdict;
  /** Before a password is checked: is this username or address locked out? */
  loginCheck(username: string, ip: string): Promise<LimitVerdict>;
  loginFailed(username: string, ip: string): Promise<void>;
  loginSucceeded(username: string, ip: string): Promise<void>;
  /** Embedding inputs per minute per principal: `count` inputs in this request. */
  inputs(principal: Principal, count: number): Promise<LimitVerdict>;
  close(): Promise<void>;
}
