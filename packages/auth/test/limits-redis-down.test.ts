import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { freePort, startRedisServer, uniqueName, type RedisServer } from '@aicache/test-redis';
import { Limits, type LimitsRedisError } from '../src/limits.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function eventually(check: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await sleep(25);
  }
}

/** The answer and how long it took. */
async function timed<T>(f: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await f();
  return { value, ms: performance.now() - t0 };
}

/** Allowed, and not for want of an answer from Redis. */
const answeredByRedis = (d: object): boolean => JSON.stringify(d) === '{"allowed":true}';

const TIMEOUT_MS = 250;
const BOUND_MS = TIMEOUT_MS + 150; // the deadline plus room for a busy machine

let server: RedisServer;
const clients: Redis[] = [];
const open: Limits[] = [];

/** A client with ioredis defaults (offline queue on, 20 retries per command, no command timeout): the worst case. */
async function client(): Promise<Redis> {
  const c = new Redis({ host: server.host, port: server.port });
  c.on('error', () => undefined);
  clients.push(c);
  await c.ping();
  return c;
}

beforeAll(async () => {
  server = await startRedisServer();
});
afterEach(async () => {
  server.resume();
  for (const l of open.splice(0)) await l.close();
});
afterAll(async () => {
  for (const c of clients) c.disconnect();
  await server.stop();
});

function limitsOn(redis: Redis, errors: LimitsRedisError[]): Limits {
  const l = new Limits({
    redis,
    keyPrefix: `${uniqueName('down')}:`,
    timeoutMs: TIMEOUT_MS,
    onRedisError: (e) => errors.push(e),
    requests: { limit: 50, windowMs: 600_000, flushIntervalMs: 20 },
    logins: { maxFailuresPerUser: 3 },
    inputs: { limit: 100 },
  });
  open.push(l);
  return l;
}

describe.sequential('when Redis is in trouble the limits fail open, quickly', () => {
  it('a stopped Redis: every check answers allowed (degraded) within the bound; the request limit still holds per process; all works again after a restart', async () => {
    const errors: LimitsRedisError[] = [];
    const redis = await client();
    const limits = limitsOn(redis, errors);
    const who = { username: 'hank', ip: '10.0.0.3' };
    expect(await limits.logins.check(who)).toEqual({ allowed: true });
    for (let i = 0; i < 10; i++) expect(limits.requests.check('key:d').allowed).toBe(true);
    await limits.requests.flush();

    await server.kill();
    await eventually(() => redis.status !== 'ready');

    const calls: Array<() => Promise<unknown>> = [
      () => limits.logins.check(who),
      () => limits.logins.fail(who),
      () => limits.inputs.consume('key:d', 10),
    ];
    for (const call of calls) {
      const { value, ms } = await timed(call);
      expect(value).toEqual({ allowed: true, degraded: true });
      expect(ms).toBeLessThan(BOUND_MS);
    }
    const { ms: succeedMs } = await timed(() => limits.logins.succeed(who));
    expect(succeedMs).toBeLessThan(BOUND_MS);
    expect(errors.map((e) => e.op)).toEqual(['logins.check', 'logins.fail', 'inputs.consume', 'logins.succeed']);
    for (const e of errors) expect(e.message).not.toContain('hank');

    // requests: decided locally, no wait at all; the flush failure is reported once, not every 20 ms
    for (let i = 0; i < 10; i++) expect(limits.requests.check('key:d').allowed).toBe(true);
    await eventually(() => limits.requests.degraded);
    expect(limits.requests.check('key:d')).toEqual({ allowed: true, degraded: true });
    await sleep(200);
    expect(errors.filter((e) => e.op === 'requests.flush')).toHaveLength(1);
    let more = 0;
    while (limits.requests.check('key:d').allowed) more++;
    expect(more).toBe(50 - 21); // this process alone saw the whole limit used

    await server.restart();
    await eventually(async () => answeredByRedis(await limits.logins.check(who)));
    await eventually(() => !limits.requests.degraded);
    // the 40 counts made while Redis was down reached it once it was back (the restarted server kept no data, so
    // the 10 flushed before the kill are gone)
    const raw = await client();
    const keys = await raw.keys('*rl:req:key:d:*');
    expect(keys).toHaveLength(1);
    expect(Number(await raw.get(keys[0]!))).toBe(40);
    expect(await limits.inputs.consume('key:d', 10)).toEqual({ allowed: true, remaining: 90 });
  });

  it('a Redis that holds the connection but answers nothing (SIGSTOP): every check answers allowed (degraded) within the bound', async () => {
    const errors: LimitsRedisError[] = [];
    const redis = await client();
    const limits = limitsOn(redis, errors);
    const who = { username: 'ivy', ip: '10.0.0.4' };
    expect(await limits.inputs.consume('key:p', 1)).toEqual({ allowed: true, remaining: 99 });

    server.pause();
    const calls: Array<() => Promise<unknown>> = [() => limits.logins.check(who), () => limits.logins.fail(who), () => limits.inputs.consume('key:p', 10)];
    const answers = await Promise.all(calls.map((call) => timed(call)));
    for (const { value, ms } of answers) {
      expect(value).toEqual({ allowed: true, degraded: true });
      expect(ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 5);
      expect(ms).toBeLessThan(BOUND_MS);
    }
    const t0 = performance.now();
    expect(limits.requests.check('key:p').allowed).toBe(true);
    const flushed = await timed(() => limits.requests.flush());
    expect(performance.now() - t0).toBeLessThan(BOUND_MS);
    expect(flushed.ms).toBeLessThan(BOUND_MS);
    await eventually(() => limits.requests.degraded);

    server.resume();
    await eventually(() => !limits.requests.degraded);
    await eventually(async () => answeredByRedis(await limits.logins.check(who)));
  });

  it('a Redis never reached, and an error callback that throws: still allowed, quickly, without a throw', async () => {
    const port = await freePort(); // nothing listens there
    const redis = new Redis({ host: '127.0.0.1', port });
    redis.on('error', () => undefined);
    clients.push(redis);
    const limits = new Limits({
      redis,
      keyPrefix: `${uniqueName('never')}:`,
      onRedisError: () => {
        throw new Error('a broken logger');
      },
      requests: { flushIntervalMs: 10 },
    });
    open.push(limits);
    const who = { username: 'kim', ip: '10.0.0.5' };
    const calls: Array<() => Promise<unknown>> = [() => limits.logins.check(who), () => limits.logins.fail(who), () => limits.inputs.consume('key:n', 3)];
    for (const call of calls) {
      const { value, ms } = await timed(call);
      expect(value).toEqual({ allowed: true, degraded: true });
      expect(ms).toBeLessThan(BOUND_MS);
    }
    await expect(limits.logins.succeed(who)).resolves.toBeUndefined();
    expect(limits.requests.check('key:n').allowed).toBe(true);
    await limits.requests.flush();
    expect(limits.requests.degraded).toBe(true);
    expect(limits.requests.check('key:n')).toEqual({ allowed: true, degraded: true });
  });
});
