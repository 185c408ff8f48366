import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster } from 'ioredis';
import { startRedisCluster, uniqueName, type RedisClusterHandle } from '@aicache/test-redis';
import { Limits } from '../src/limits.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('the limits on a Redis Cluster', () => {
  let cluster: RedisClusterHandle;
  const clients: Cluster[] = [];
  const open: Limits[] = [];

  async function limits(keyPrefix: string): Promise<Limits> {
    const c = new Cluster(cluster.nodes);
    clients.push(c);
    while (c.status !== 'ready') await sleep(20);
    const l = new Limits({ redis: c, keyPrefix, requests: { limit: 30, windowMs: 600_000, flushIntervalMs: 60_000 }, logins: { maxFailuresPerUser: 2 }, inputs: { limit: 10 } });
    open.push(l);
    return l;
  }

  beforeAll(async () => {
    cluster = await startRedisCluster({ replicasPerMaster: 0 });
  }, 60_000);
  afterAll(async () => {
    for (const l of open) await l.close();
    for (const c of clients) c.disconnect();
    await cluster?.stop();
  }, 30_000);

  it('request counts of principals on every node are flushed and shared across replicas; logins and inputs count too', async () => {
    const keyPrefix = `${uniqueName('cl')}:`;
    const a = await limits(keyPrefix);
    const b = await limits(keyPrefix);
    const principals = Array.from({ length: 20 }, (_, i) => `key:k${i}`); // spread over the nodes' slots
    const now = Date.now();
    for (const p of principals) for (let i = 0; i < 20; i++) expect(a.requests.check(p, now).allowed).toBe(true);
    await a.requests.flush(now);
    expect(a.requests.degraded).toBe(false);
    for (const p of principals) expect(b.requests.check(p, now).allowed).toBe(true);
    await b.requests.flush(now); // b learns a's 20 of each
    for (const p of principals) {
      let more = 0;
      while (b.requests.check(p, now).allowed) more++;
      expect(more).toBe(30 - 21);
    }
    expect(b.requests.degraded).toBe(false);

    const who = { username: 'jo', ip: '10.2.0.1' };
    await a.logins.fail(who);
    expect(await b.logins.fail(who)).toMatchObject({ allowed: false, reason: 'user' });
    expect(await a.inputs.consume('key:k0', 7)).toEqual({ allowed: true, remaining: 3 });
    expect(await b.inputs.consume('key:k0', 4)).toMatchObject({ allowed: false, reason: 'rate' });
  });
});
