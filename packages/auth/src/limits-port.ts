import { requestRateKey, type Limits, type LoginLimiter } from './limits.js';
import type { Principal } from './principal.js';

/** `tooLarge`: one request asks more than the whole budget (the limit): a 413, not a 429. */
export type LimitVerdict = { allowed: true } | { allowed: false; retryAfterMs: number; tooLarge?: number };

/** The limits the auth plugin and the services ask, counted in Redis so they hold across replicas. */
export interface PrincipalLimits {
  /** Request rate per credential; synchronous (counted in process, flushed to Redis in batches). */
  request(principal: Principal): LimitVerdict;
  /** Before a password is checked: is this username or address locked out? */
  loginCheck(username: string, ip: string): Promise<LimitVerdict>;
  loginFailed(username: string, ip: string): Promise<void>;
  loginSucceeded(username: string, ip: string): Promise<void>;
  /** After a bearer credential that is not valid: is this address now locked out of guessing? */
  credentialFailed(ip: string): Promise<LimitVerdict>;
  /** Embedding inputs per minute per principal: `count` inputs in this request. */
  inputs(principal: Principal, count: number): Promise<LimitVerdict>;
  close(): Promise<void>;
}

/**
 * The limits of limits.ts as the plugin asks them. `guesses` counts invalid bearer credentials per address (a
 * LoginLimiter whose per-user bucket is one shared name that never locks: only the address's bucket does).
 */
export function principalLimits(limits: Limits, guesses: LoginLimiter): PrincipalLimits {
  const verdict = (d: { allowed: boolean; retryAfterMs?: number }): LimitVerdict => (d.allowed ? { allowed: true } : { allowed: false, retryAfterMs: d.retryAfterMs ?? 1000 });
  return {
    request: (principal) => verdict(limits.requests.check(requestRateKey(principal))),
    loginCheck: async (username, ip) => verdict(await limits.logins.check({ username, ip })),
    loginFailed: async (username, ip) => void (await limits.logins.fail({ username, ip })),
    loginSucceeded: (username, ip) => limits.logins.succeed({ username, ip }),
    credentialFailed: async (ip) => verdict(await guesses.fail({ username: 'bearer', ip })),
    inputs: async (principal, count) => {
      const d = await limits.inputs.consume(requestRateKey(principal), count);
      if (d.allowed) return { allowed: true };
      return d.reason === 'rate' ? { allowed: false, retryAfterMs: d.retryAfterMs } : { allowed: false, retryAfterMs: 0, tooLarge: d.limit };
    },
    close: () => limits.close(),
  };
}
