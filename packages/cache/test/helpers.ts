import { Redis, type RedisOptions } from 'ioredis';
import type { RedisServer, TestRedis } from '@aicache/test-redis';

export function connectionOf(r: TestRedis | RedisServer, db = 0): RedisOptions {
  const u = new URL(r.url);
  return {
    host: u.hostname,
    port: Number(u.port || 6379),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    db,
  };
}

/** A plain client for looking behind the cache's back. */
export function rawClient(r: TestRedis | RedisServer, db = 0): Redis {
  return new Redis({ ...connectionOf(r, db), maxRetriesPerRequest: 1 });
}

/** INFO commandstats -> { get: calls, mget: calls, ... }. */
export async function commandCalls(client: Redis): Promise<Record<string, number>> {
  const text = await client.info('commandstats');
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out[m[1] as string] = Number(m[2]);
  return out;
}

/** Writes `count` plain keys `${prefix}${i}` in pipelined chunks. */
export async function seed(client: Redis, prefix: string, count: number, ttlSec = 3600): Promise<void> {
  for (let i = 0; i < count; i += 5000) {
    const pipe = client.pipeline();
    for (let j = i; j < Math.min(count, i + 5000); j++) pipe.set(`${prefix}${j}`, '1', 'EX', ttlSec);
    await pipe.exec();
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls until `check` holds (or fails after `ms`). */
export async function eventually(check: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await sleep(25);
  }
}
