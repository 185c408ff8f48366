import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster } from 'ioredis';
import { startRedisCluster, type RedisClusterHandle } from '@aicache/test-redis';
import { DEFAULT_SETTINGS, JobQueue, SYSTEM_TENANT } from '../src/index.js';

/**
 * The queue, its schedulers and the sweep on a Redis Cluster: every key under `jobs:{<service>}` sits in one slot, so
 * the scheduler's scripts run, and the sweep's SCAN finds the leftovers on whichever master holds that slot.
 */
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const SERVICE = 'cl-jobs';
const P = `jobs:{${SERVICE}}`;

let cluster: RedisClusterHandle;
let client: Cluster;
let queue: JobQueue;
const ran: string[] = [];

beforeAll(async () => {
  cluster = await startRedisCluster({ replicasPerMaster: 0, args: ['--maxmemory-policy', 'noeviction'] });
  client = new Cluster(cluster.nodes);
  while (client.status !== 'ready') await sleep(20);
  queue = new JobQueue({
    service: SERVICE,
    redis: client,
    settings: { ...DEFAULT_SETTINGS, closeGraceMs: 2000 },
    runners: { work: async () => 'done' },
    scheduledRunners: {
      tick: async (ctx) => {
        ran.push(ctx.id);
        return ctx.tenant;
      },
    },
  });
  queue.start();
}, 90_000);

afterAll(async () => {
  await queue?.close();
  client?.disconnect();
  await cluster?.stop();
}, 30_000);

async function waitFor(what: string, ok: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('jobs on a Redis Cluster', () => {
  it('a scheduler ticks, and the sweep removes stale ids and finished flags whatever master holds the slot', async () => {
    await queue.applySchedules([{ kind: 'tick', everyMs: 300 }]);
    await waitFor('3 ticks', () => ran.length >= 3);
    expect(new Set(ran).size).toBe(ran.length);

    const { job } = await queue.add('work', 'work-1', { tenant: 'acme', input: {} });
    await waitFor('the job to complete', async () => (await job.getState()) === 'completed');
    await client.zadd(`${P}:tenant:acme`, 1, 'work-gone');
    await client.zadd(`${P}:tenant:globex`, 1, 'work-gone-2');
    await client.set(`${P}:cancel:work-1`, '1');
    await client.set(`${P}:cancel:work-gone`, '1');

    const swept = await queue.sweep({ batch: 2 });
    expect(swept).toMatchObject({ staleIds: 2, cancelFlags: 2, complete: true });
    expect(swept.tenantLists).toBeGreaterThanOrEqual(3); // acme, globex and the system's
    expect(await client.zrange(`${P}:tenant:acme`, '0', '-1')).toEqual(['work-1']);
    expect(await client.exists(`${P}:tenant:globex`)).toBe(0);
    // The ticks' entries in the system list are live jobs: kept.
    expect(await client.zcard(`${P}:tenant:${SYSTEM_TENANT}`)).toBeGreaterThanOrEqual(3);

    await queue.applySchedules([{ kind: 'tick', everyMs: 0 }]);
    expect(await queue.schedulers()).toEqual([]);
  }, 60_000);

  it('stops at its bound and says so', async () => {
    await client.zadd(`${P}:tenant:many`, ...Array.from({ length: 30 }, (_, i) => [i, `gone-${i}`]).flat());
    const first = await queue.sweep({ maxKeys: 10, batch: 5 });
    expect(first.complete).toBe(false);
    expect(first.staleIds).toBeLessThanOrEqual(10);
    const rest = await queue.sweep();
    expect(rest.complete).toBe(true);
    expect(first.staleIds + rest.staleIds).toBe(30);
  }, 30_000);
});
