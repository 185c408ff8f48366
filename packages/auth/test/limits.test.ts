import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { startRedisServer, uniqueName, type RedisServer } from '@aicache/test-redis';
import { InputsLimiter, Limits, LoginLimiter, RequestRateLimiter, requestRateKey, type LimitsRedisError } from '../src/limits.js';
import { ipKey } from '../src/limits/logins.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let server: RedisServer;
const clients: Redis[] = [];
const closers: Array<() => Promise<void>> = [];

async function client(): Promise<Redis> {
  const c = new Redis({ host: server.host, port: server.port });
  clients.push(c);
  await c.ping();
  return c;
}

function track<T extends { close(): Promise<void> }>(x: T): T {
  closers.push(() => x.close());
  return x;
}

/** Waits, if need be, for the next fixed window so that at least `needMs` of it are left. */
async function roomInWindow(windowMs: number, needMs: number): Promise<void> {
  const left = windowMs - (Date.now() % windowMs);
  if (left < needMs) await sleep(left + 5);
}

beforeAll(async () => {
  server = await startRedisServer();
});
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});
afterAll(async () => {
  for (const c of clients) c.disconnect();
  await server.stop();
});

describe('request rate per principal', () => {
  it('one replica stops exactly at the limit and answers a retry-after within the window', async () => {
    const r = track(new RequestRateLimiter({ redis: await client(), keyPrefix: `${uniqueName('rl')}:`, limit: 20, windowMs: 600_000, flushIntervalMs: 60_000 }));
    const now = Date.now();
    const decisions = Array.from({ length: 25 }, () => r.check('key:a', now));
    expect(decisions.filter((d) => d.allowed)).toHaveLength(20);
    const refused = decisions[24]!;
    expect(refused.allowed).toBe(false);
    if (!refused.allowed) {
      expect(refused.retryAfterMs).toBeGreaterThan(0);
      expect(refused.retryAfterMs).toBeLessThanOrEqual(600_000);
      expect(refused.retryAfterMs).toBe(600_000 - (now % 600_000));
    }
    // another principal has its own budget
    expect(r.check('key:b', now).allowed).toBe(true);
  });

  it('a replica counts what the other replicas flushed: two replicas share one budget exactly when flushes are in step', async () => {
    const keyPrefix = `${uniqueName('rl')}:`;
    const opts = { keyPrefix, limit: 100, windowMs: 600_000, flushIntervalMs: 60_000 };
    const a = track(new RequestRateLimiter({ redis: await client(), ...opts }));
    const b = track(new RequestRateLimiter({ redis: await client(), ...opts }));
    const now = Date.now();
    for (let i = 0; i < 80; i++) expect(a.check('user:u1', now).allowed).toBe(true);
    await a.flush(now);
    expect(b.check('user:u1', now).allowed).toBe(true); // b has not heard of a's 80 yet
    await b.flush(now); // ... and learns them here: 81
    let more = 0;
    while (b.check('user:u1', now).allowed) more++;
    expect(more).toBe(19);
    await b.flush(now);
    const raw = await client();
    const window = Math.floor(now / 600_000);
    expect(Number(await raw.get(`${keyPrefix}rl:req:user:u1:${window}`))).toBe(100);
    const pttl = await raw.pttl(`${keyPrefix}rl:req:user:u1:${window}`);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(2 * 600_000);
  });

  it('two replicas flushing on their own timers stop near the limit, not at twice it (overshoot within the stated bound)', async () => {
    const limit = 100;
    const windowMs = 5_000;
    const flushIntervalMs = 20;
    const opts = { keyPrefix: `${uniqueName('rl')}:`, limit, windowMs, flushIntervalMs };
    const a = track(new RequestRateLimiter({ redis: await client(), ...opts }));
    const b = track(new RequestRateLimiter({ redis: await client(), ...opts }));
    await roomInWindow(windowMs, 2_500);
    const started = Date.now();
    let allowed = 0;
    let attempts = 0;
    for (let i = 0; i < 150; i++) {
      for (const r of [a, b]) {
        attempts++;
        if (r.check('key:shared').allowed) allowed++;
      }
      await sleep(5);
    }
    const elapsedMs = Date.now() - started;
    const rate = attempts / (elapsedMs / 1000);
    // limit + λ (R-1)/R (2 T + RTT), with 30 ms allowed for a round trip and the timers' lateness on a busy machine
    const bound = limit + (rate * 0.5 * (2 * flushIntervalMs + 30)) / 1000;
    console.log(`two replicas: ${attempts} attempts at ${rate.toFixed(0)}/s over ${elapsedMs} ms, ${allowed} allowed for a limit of ${limit} (bound ${bound.toFixed(1)})`);
    expect(allowed).toBeGreaterThanOrEqual(limit);
    expect(allowed).toBeLessThanOrEqual(Math.ceil(bound));
    // what Redis holds is what the two allowed
    await a.flush();
    await b.flush();
    const raw = await client();
    const keys = await raw.keys(`${opts.keyPrefix}rl:req:key:shared:*`);
    expect(keys).toHaveLength(1);
    expect(Number(await raw.get(keys[0]!))).toBe(allowed);
  });

  it('checks cost no Redis round trip each: a thousand requests make one INCRBY per principal per flush', async () => {
    const raw = await client();
    const incrbys = async (): Promise<number> => Number(/cmdstat_incrby:calls=(\d+)/.exec(await raw.info('commandstats'))?.[1] ?? 0);
    const r = track(new RequestRateLimiter({ redis: await client(), keyPrefix: `${uniqueName('rl')}:`, limit: 5_000, windowMs: 600_000, flushIntervalMs: 50 }));
    const before = await incrbys();
    const t0 = performance.now();
    for (let i = 0; i < 1_000; i++) r.check(`key:${i % 2}`);
    const checkMs = performance.now() - t0;
    await sleep(150);
    const calls = (await incrbys()) - before;
    console.log(`1000 checks took ${checkMs.toFixed(2)} ms and ${calls} INCRBY`);
    expect(calls).toBe(2);
  });

  it('the window resets: refused now, allowed again after retryAfterMs', async () => {
    const r = track(new RequestRateLimiter({ redis: await client(), keyPrefix: `${uniqueName('rl')}:`, limit: 3, windowMs: 1_000, flushIntervalMs: 20 }));
    await roomInWindow(1_000, 200);
    for (let i = 0; i < 3; i++) expect(r.check('key:w').allowed).toBe(true);
    const refused = r.check('key:w');
    expect(refused.allowed).toBe(false);
    if (refused.allowed) return;
    expect(refused.retryAfterMs).toBeGreaterThan(0);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(1_000);
    await sleep(refused.retryAfterMs + 10);
    expect(r.check('key:w').allowed).toBe(true);
  });

  it('limit 0 turns the request limit off', async () => {
    const r = track(new RequestRateLimiter({ redis: await client(), keyPrefix: `${uniqueName('rl')}:`, limit: 0 }));
    for (let i = 0; i < 1000; i++) expect(r.check('key:x').allowed).toBe(true);
  });

  it('rejects nonsense settings at construction', async () => {
    const redis = await client();
    expect(() => new RequestRateLimiter({ redis, keyPrefix: 'x:', limit: -1 })).toThrow(/requests.limit/);
    expect(() => new RequestRateLimiter({ redis, keyPrefix: 'x:', windowMs: 0 })).toThrow(/requests.windowMs/);
    expect(() => new LoginLimiter({ redis, keyPrefix: 'x:', maxFailuresPerUser: 1.5 })).toThrow(/maxFailuresPerUser/);
    expect(() => new InputsLimiter({ redis, keyPrefix: 'x:', limit: Number.NaN })).toThrow(/inputs.limit/);
  });

  it('counts key principals per key and a user sessions and service tokens per user', () => {
    expect(requestRateKey({ kind: 'key', tenant: 't', userId: 'u1', credentialId: 'k9', scopes: ['read'] })).toBe('key:k9');
    expect(requestRateKey({ kind: 'session', tenant: 't', userId: 'u1', credentialId: 's1', scopes: ['read'] })).toBe('user:u1');
    expect(requestRateKey({ kind: 'service', tenant: 't', userId: 'u1', via: 'api', scopes: ['read'] })).toBe('user:u1');
    expect(requestRateKey({ kind: 'bootstrap', tenant: 't', scopes: ['admin'] })).toBe('bootstrap');
  });
});

describe('failed logins', () => {
  const who = (username: string, ip = '10.0.0.1') => ({ username, ip });

  it('locks a username after 10 failures for 15 minutes, whatever the password, and leaves other usernames alone', async () => {
    const l = new LoginLimiter({ redis: await client(), keyPrefix: `${uniqueName('rl')}:` });
    expect(await l.check(who('alice'))).toEqual({ allowed: true });
    for (let i = 1; i <= 9; i++) expect((await l.fail(who('alice'))).allowed).toBe(true);
    const tenth = await l.fail(who('Alice ')); // the same username as typed differently
    expect(tenth).toMatchObject({ allowed: false, reason: 'user' });
    const locked = await l.check(who('alice', '10.9.9.9')); // from any address
    expect(locked.allowed).toBe(false);
    if (!locked.allowed) {
      expect(locked.reason).toBe('user');
      expect(locked.retryAfterMs).toBeGreaterThan(14 * 60_000);
      expect(locked.retryAfterMs).toBeLessThanOrEqual(15 * 60_000);
    }
    expect(await l.check(who('bob'))).toEqual({ allowed: true });
  });

  it('a successful login clears the username failures, not the address ones', async () => {
    const l = new LoginLimiter({ redis: await client(), keyPrefix: `${uniqueName('rl')}:`, maxFailuresPerUser: 3, maxFailuresPerIp: 5 });
    await l.fail(who('carol'));
    await l.fail(who('carol'));
    await l.succeed(who('carol'));
    expect((await l.fail(who('carol'))).allowed).toBe(true);
    expect((await l.fail(who('carol'))).allowed).toBe(true);
    expect(await l.check(who('carol'))).toEqual({ allowed: true });
    // the address has now failed 4 times; the 5th locks it for every username
    expect(await l.fail(who('dave'))).toMatchObject({ allowed: false, reason: 'ip' });
    expect(await l.check(who('erin'))).toMatchObject({ allowed: false, reason: 'ip' });
    expect(await l.check(who('erin', '10.0.0.2'))).toEqual({ allowed: true });
  });

  it('an IPv4 address seen through IPv6 counts as the same address', async () => {
    const l = new LoginLimiter({ redis: await client(), keyPrefix: `${uniqueName('rl')}:`, maxFailuresPerIp: 2 });
    await l.fail(who('a', '192.0.2.7'));
    await l.fail(who('b', '::ffff:192.0.2.7'));
    expect(await l.check(who('c', '192.0.2.7'))).toMatchObject({ allowed: false, reason: 'ip' });
  });

  it('IPv6 addresses count per /64 network', async () => {
    expect(ipKey('2001:db8:1:2::1')).toBe('2001:db8:1:2::/64');
    expect(ipKey('2001:0DB8:0001:0002:ffff:0:0:9')).toBe('2001:db8:1:2::/64');
    expect(ipKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(ipKey('::1')).toBe('0:0:0:0::/64');
    expect(ipKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(ipKey('64:ff9b:1:2:3:4:1.2.3.4')).toBe('64:ff9b:1:2::/64');
    expect(ipKey('10.0.0.1')).toBe('10.0.0.1');
    const l = new LoginLimiter({ redis: await client(), keyPrefix: `${uniqueName('rl')}:`, maxFailuresPerIp: 2 });
    await l.fail(who('a', '2001:db8:1:2::1'));
    await l.fail(who('b', '2001:db8:1:2:ffff::9'));
    expect(await l.check(who('c', '2001:db8:1:2::77'))).toMatchObject({ allowed: false, reason: 'ip' });
    expect(await l.check(who('c', '2001:db8:1:3::1'))).toEqual({ allowed: true });
  });

  it('the lock ends after its duration, and retry-after says when', async () => {
    const l = new LoginLimiter({ redis: await client(), keyPrefix: `${uniqueName('rl')}:`, maxFailuresPerUser: 2, userWindowMs: 1_000, userLockMs: 1_000 });
    await l.fail(who('frank'));
    await l.fail(who('frank'));
    const locked = await l.check(who('frank'));
    expect(locked.allowed).toBe(false);
    if (locked.allowed) return;
    expect(locked.retryAfterMs).toBeGreaterThan(0);
    expect(locked.retryAfterMs).toBeLessThanOrEqual(1_000);
    await sleep(locked.retryAfterMs + 50);
    expect(await l.check(who('frank'))).toEqual({ allowed: true });
  });

  it('a lock holds across replicas', async () => {
    const keyPrefix = `${uniqueName('rl')}:`;
    const a = new LoginLimiter({ redis: await client(), keyPrefix, maxFailuresPerUser: 4 });
    const b = new LoginLimiter({ redis: await client(), keyPrefix, maxFailuresPerUser: 4 });
    await a.fail(who('gina'));
    await b.fail(who('gina'));
    await a.fail(who('gina'));
    expect((await b.fail(who('gina'))).allowed).toBe(false);
    expect((await a.check(who('gina'))).allowed).toBe(false);
  });

  it('a huge username becomes a short key', async () => {
    const keyPrefix = `${uniqueName('rl')}:`;
    const l = new LoginLimiter({ redis: await client(), keyPrefix });
    await l.fail(who('x'.repeat(100_000)));
    const keys = await (await client()).keys(`${keyPrefix}rl:login:user*`);
    expect(keys).toHaveLength(1);
    expect(keys[0]!.length).toBeLessThan(200);
  });
});

describe('embedding inputs per principal', () => {
  it('spends one point per input, refuses a batch the window cannot take without spending it, and shares the budget across replicas', async () => {
    const keyPrefix = `${uniqueName('rl')}:`;
    const a = new InputsLimiter({ redis: await client(), keyPrefix, limit: 100 });
    const b = new InputsLimiter({ redis: await client(), keyPrefix, limit: 100 });
    expect(await a.consume('key:k', 60)).toEqual({ allowed: true, remaining: 40 });
    const refused = await b.consume('key:k', 50);
    expect(refused).toMatchObject({ allowed: false, reason: 'rate' });
    if (!refused.allowed && refused.reason === 'rate') {
      expect(refused.retryAfterMs).toBeGreaterThan(0);
      expect(refused.retryAfterMs).toBeLessThanOrEqual(60_000);
    }
    expect(await b.consume('key:k', 40)).toEqual({ allowed: true, remaining: 0 });
    expect(await a.consume('key:k', 1)).toMatchObject({ allowed: false, reason: 'rate' });
    expect(await a.consume('key:other', 1)).toEqual({ allowed: true, remaining: 99 });
    expect(await a.consume('key:k', 0)).toEqual({ allowed: true });
  });

  it('a batch larger than the whole budget is refused as such', async () => {
    const l = new InputsLimiter({ redis: await client(), keyPrefix: `${uniqueName('rl')}:`, limit: 100 });
    expect(await l.consume('key:k', 101)).toEqual({ allowed: false, reason: 'batch-too-large', limit: 100 });
    await expect(l.consume('key:k', -1)).rejects.toThrow(RangeError);
  });

  it('the window resets', async () => {
    const l = new InputsLimiter({ redis: await client(), keyPrefix: `${uniqueName('rl')}:`, limit: 10, windowMs: 1_000 });
    expect((await l.consume('key:k', 10)).allowed).toBe(true);
    const refused = await l.consume('key:k', 1);
    expect(refused).toMatchObject({ allowed: false, reason: 'rate' });
    if (refused.allowed || refused.reason !== 'rate') return;
    expect(refused.retryAfterMs).toBeLessThanOrEqual(1_000);
    await sleep(refused.retryAfterMs + 50);
    expect((await l.consume('key:k', 10)).allowed).toBe(true);
  });
});

describe('Limits', () => {
  it('builds the three limits from one set of options, with the documented defaults', async () => {
    const errors: LimitsRedisError[] = [];
    const limits = track(new Limits({ redis: await client(), keyPrefix: `${uniqueName('rl')}:`, onRedisError: (e) => errors.push(e), inputs: { limit: 5 } }));
    expect(limits.requests.settings).toEqual({ limit: 1200, windowMs: 60_000, flushIntervalMs: 50 });
    expect(limits.logins.settings).toMatchObject({ maxFailuresPerUser: 10, userLockMs: 900_000, maxFailuresPerIp: 100, ipWindowMs: 3_600_000 });
    expect(limits.inputs.settings).toEqual({ limit: 5, windowMs: 60_000 });
    expect(limits.requests.check('key:z')).toEqual({ allowed: true });
    expect(await limits.inputs.consume('key:z', 5)).toEqual({ allowed: true, remaining: 0 });
    expect(await limits.logins.check({ username: 'z', ip: '10.1.1.1' })).toEqual({ allowed: true });
    expect(errors).toEqual([]);
  });
});
