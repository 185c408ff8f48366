import { createHash } from 'node:crypto';
import { isIPv6 } from 'node:net';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { clamp, positiveInt, report, seconds, within, type LimitsRedis, type OnLimitsRedisError } from './shared.js';

export interface LoginSettings {
  /** Failed logins for one username within `userWindowMs` that lock the username. Default 10. */
  maxFailuresPerUser: number;
  /** The window the username's failures are counted in, from its first failure. Default 15 min. */
  userWindowMs: number;
  /** How long a locked username is refused, even with the right password. Default 15 min. */
  userLockMs: number;
  /** Failed logins from one client address within `ipWindowMs` that lock the address (for every username). Default 100. */
  maxFailuresPerIp: number;
  /** The window an address's failures are counted in, from its first failure. Default 1 h. */
  ipWindowMs: number;
  /** How long a locked address is refused. Default 1 h. */
  ipLockMs: number;
}

export const LOGIN_DEFAULTS: Readonly<LoginSettings> = Object.freeze({
  maxFailuresPerUser: 10,
  userWindowMs: 15 * 60_000,
  userLockMs: 15 * 60_000,
  maxFailuresPerIp: 100,
  ipWindowMs: 60 * 60_000,
  ipLockMs: 60 * 60_000,
});

export interface LoginLimiterOptions extends Partial<LoginSettings> {
  redis: LimitsRedis;
  /** Prepended to every key, e.g. `aicache:auth:`. */
  keyPrefix: string;
  /** Every call answers within this (failing open past it). Default 250. */
  timeoutMs?: number;
  onRedisError?: OnLimitsRedisError;
}

/** Who tries to log in: the username as typed and the client address (`request.ip`). */
export interface LoginAttempt {
  username: string;
  ip: string;
}

/**
 * `allowed: false`: refuse the login without verifying the password (answer 429 with Retry-After); `reason` says
 * whether the username or the address is locked. `degraded`: Redis did not answer in time, so this was not checked.
 */
export type LoginDecision = { allowed: true; degraded?: true } | { allowed: false; retryAfterMs: number; reason: 'user' | 'ip' };

const ALLOWED: LoginDecision = Object.freeze({ allowed: true });
const ALLOWED_DEGRADED: LoginDecision = Object.freeze({ allowed: true, degraded: true });

/**
 * Failed logins per username and per client address, with lockout, counted in Redis by rate-limiter-flexible.
 *
 * The protocol: `check` before verifying the password (a locked username or address is refused whatever the
 * password), then `fail` after a wrong password or an unknown username (counted alike, so lockouts do not tell which
 * usernames exist) or `succeed` after a right one (clears the username's failures; the address's stay).
 * None of them throws; on Redis trouble each answers within timeoutMs, allowing.
 */
export class LoginLimiter {
  readonly settings: Readonly<LoginSettings>;
  private readonly byUser: RateLimiterRedis;
  private readonly byIp: RateLimiterRedis;
  private readonly timeoutMs: number;
  private readonly onRedisError: OnLimitsRedisError | undefined;

  constructor(opts: LoginLimiterOptions) {
    const s: LoginSettings = { ...LOGIN_DEFAULTS };
    for (const k of Object.keys(LOGIN_DEFAULTS) as Array<keyof LoginSettings>) {
      if (opts[k] !== undefined) s[k] = positiveInt(`logins.${k}`, opts[k]);
    }
    this.settings = Object.freeze(s);
    this.timeoutMs = positiveInt('timeoutMs', opts.timeoutMs ?? 250);
    this.onRedisError = opts.onRedisError;
    const common = { storeClient: opts.redis, rejectIfRedisNotReady: true };
    this.byUser = new RateLimiterRedis({ ...common, keyPrefix: `${opts.keyPrefix}rl:login:user`, points: s.maxFailuresPerUser, duration: seconds(s.userWindowMs) });
    this.byIp = new RateLimiterRedis({ ...common, keyPrefix: `${opts.keyPrefix}rl:login:ip`, points: s.maxFailuresPerIp, duration: seconds(s.ipWindowMs) });
  }

  /** Before verifying the password: is the username or the address locked? */
  async check(attempt: LoginAttempt): Promise<LoginDecision> {
    try {
      const [user, ip] = await within(Promise.all([this.byUser.get(userKey(attempt.username)), this.byIp.get(ipKey(attempt.ip))]), this.timeoutMs);
      return this.decide(user, ip);
    } catch (err) {
      return this.degrade('logins.check', err);
    }
  }

  /**
   * After a failed login: counts it for the username and the address, and locks either once it reaches its maximum.
   * Answers what `check` would answer now (refused from the failure that locked on).
   */
  async fail(attempt: LoginAttempt): Promise<LoginDecision> {
    const s = this.settings;
    try {
      const count = async (limiter: RateLimiterRedis, key: string, max: number, lockMs: number): Promise<RateLimiterRes> => {
        // consume() rejects with the result once the count passes `points`: that is a count here, not an error.
        const res = await limiter.consume(key, 1).catch((e: unknown) => {
          if (e instanceof RateLimiterRes) return e;
          throw e;
        });
        if (res.consumedPoints < max) return res;
        return limiter.block(key, seconds(lockMs));
      };
      const [user, ip] = await within(
        Promise.all([
          count(this.byUser, userKey(attempt.username), s.maxFailuresPerUser, s.userLockMs),
          count(this.byIp, ipKey(attempt.ip), s.maxFailuresPerIp, s.ipLockMs),
        ]),
        this.timeoutMs,
      );
      return this.decide(user, ip);
    } catch (err) {
      return this.degrade('logins.fail', err);
    }
  }

  /** After a successful login: forgets the username's failures. Never throws. */
  async succeed(attempt: LoginAttempt): Promise<void> {
    try {
      await within(this.byUser.delete(userKey(attempt.username)), this.timeoutMs);
    } catch (err) {
      this.degrade('logins.succeed', err);
    }
  }

  private decide(user: RateLimiterRes | null, ip: RateLimiterRes | null): LoginDecision {
    const s = this.settings;
    const locks: Array<{ reason: 'user' | 'ip'; ms: number }> = [];
    if (user && user.consumedPoints >= s.maxFailuresPerUser) locks.push({ reason: 'user', ms: clamp(user.msBeforeNext, 1, Math.max(s.userLockMs, s.userWindowMs)) });
    if (ip && ip.consumedPoints >= s.maxFailuresPerIp) locks.push({ reason: 'ip', ms: clamp(ip.msBeforeNext, 1, Math.max(s.ipLockMs, s.ipWindowMs)) });
    if (locks.length === 0) return ALLOWED;
    const longest = locks.reduce((a, b) => (b.ms > a.ms ? b : a));
    return { allowed: false, retryAfterMs: longest.ms, reason: longest.reason };
  }

  private degrade(op: string, err: unknown): LoginDecision {
    report(this.onRedisError, op, err);
    return ALLOWED_DEGRADED;
  }
}

/**
 * Usernames are counted case- and space-insensitively, after Unicode NFKC (`Alice ` and `alice` share a count); long ones are hashed so
 * a megabyte typed into the form does not become a megabyte key.
 */
function userKey(username: string): string {
  const u = username.normalize('NFKC').trim().toLowerCase();
  return u.length <= 128 ? encodeURIComponent(u) : `sha256:${createHash('sha256').update(u).digest('hex')}`;
}

/**
 * The address failures are counted under. An IPv4 address seen through an IPv6 socket (`::ffff:10.0.0.1`) counts as
 * the IPv4 address; an IPv6 address counts as its /64 network, since one host commonly holds a whole /64 and could
 * otherwise step around the limit by changing addresses within it.
 */
export function ipKey(ip: string): string {
  const a = ip.trim().toLowerCase();
  if (a.startsWith('::ffff:') && a.includes('.')) return a.slice(7);
  if (!isIPv6(a)) return a;
  const bare = a.split('%')[0] ?? a;
  const [head = '', tail] = bare.split('::');
  const groups = (part: string): string[] => (part ? part.split(':') : []);
  const width = (g: string[]): number => g.reduce((n, x) => n + (x.includes('.') ? 2 : 1), 0);
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const full = tail === undefined ? h : [...h, ...Array<string>(Math.max(0, 8 - width(h) - width(t))).fill('0'), ...t];
  return `${full
    .slice(0, 4)
    .map((x) => parseInt(x, 16).toString(16))
    .join(':')}::/64`;
}
