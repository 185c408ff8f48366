import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { Cluster } from 'ioredis';
import { askNode, startRedisCluster, type RedisClusterHandle } from '@aicache/test-redis';
import { assertNoEviction, evictionPolicy, JobsRefusedError, viewOf } from '../src/index.js';
import { jobsApp, read, stateClientOf, submit, waitFor, workerRunning, type Runs } from './topology-app.js';

/**
 * The job queue on a real 3-master Cluster (one replica each), through the state client a service builds from
 * REDIS_CLUSTER_NODES: the hash tag in `jobs:{<service>}` keeps every key of the queue in one slot, so BullMQ's
 * multi-key scripts run there.
 */
const SERVICE = 'cluster-jobs';
let cluster: RedisClusterHandle;
let redis: Cluster;
let app: FastifyInstance;
let runs: Runs;

beforeAll(async () => {
  cluster = await startRedisCluster({ args: ['--maxmemory-policy', 'noeviction'] });
  redis = stateClientOf({ REDIS_CLUSTER_NODES: cluster.nodesEnv }) as Cluster;
  ({ app, runs } = await jobsApp(redis, SERVICE, { concurrency: 1 }));
  await workerRunning(app);
}, 90_000);

afterAll(async () => {
  await app?.close();
  redis?.disconnect();
  await cluster?.stop();
});

describe('jobs on a Redis Cluster', () => {
  it('checks the eviction policy of every master, not only the first', async () => {
    expect(await evictionPolicy(redis)).toBe('noeviction');
    const masters = await cluster.masters();
    expect(masters).toHaveLength(3);
    // The last master evicting is enough to refuse: a queue whose slot lands there would lose keys.
    const last = masters[masters.length - 1]!;
    await askNode(last, undefined, (c) => c.config('SET', 'maxmemory-policy', 'allkeys-lru'));
    try {
      expect(await evictionPolicy(redis)).toBe('allkeys-lru');
      await expect(assertNoEviction(redis)).rejects.toBeInstanceOf(JobsRefusedError);
    } finally {
      await askNode(last, undefined, (c) => c.config('SET', 'maxmemory-policy', 'noeviction'));
    }
    expect(await evictionPolicy(redis)).toBe('noeviction');
  });

  it('runs jobs added through the route, with their progress read back, and every key of the queue in one slot', async () => {
    expect(app.jobs.worker?.isRunning()).toBe(true);
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) ids.push((await submit(app, { steps: 4, stepMs: 5, tag: `run-${i}` })).id);
    expect(new Set(ids).size).toBe(12);
    for (const id of ids) {
      const job = await waitFor(app, id, (j) => j.state === 'completed');
      expect(job.progress).toEqual({ current: 4, total: 4, percentage: 100 });
      expect(job.result).toEqual({ steps: 4 });
      expect(job.attempts).toBe(1);
    }
    for (const id of ids) expect(runs.finished.get(id)).toBe(1);

    // Every key of the queue (BullMQ's and the tenant list) is on the master that serves the hash tag's slot.
    const owner = await cluster.masterOf(`jobs:{${SERVICE}}`);
    const perMaster = new Map<number, string[]>();
    for (const m of await cluster.masters()) perMaster.set(m.port, (await askNode(m, undefined, (c) => c.keys('jobs:*'))) as string[]);
    const elsewhere = [...perMaster].filter(([port]) => port !== owner.port).flatMap(([, keys]) => keys);
    expect(elsewhere).toEqual([]);
    const here = perMaster.get(owner.port)!;
    expect(here).toContain(`jobs:{${SERVICE}}:jobs:completed`);
    expect(here).toContain(`jobs:{${SERVICE}}:tenant:tenant-a`);
    const slots = new Set(await Promise.all(here.map((k) => askNode(owner, undefined, (c) => c.call('CLUSTER', 'KEYSLOT', k)))));
    expect(slots.size).toBe(1);
  });

  it('reads a job that finished after its hash was read as finished with its last progress and its result', async () => {
    const { id } = await submit(app, { steps: 3, stepMs: 150, tag: 'stale-read' });
    await waitFor(app, id, (j) => j.state === 'active' && j.progress.current >= 1);
    const stale = (await app.jobs.queue.getJob(id))!;
    await waitFor(app, id, (j) => j.state === 'completed');
    // The state of now with the hash of before: with no queue to read it again from, it is shown still running,
    // never completed without its result (as the routes once answered it).
    const before = await viewOf(stale);
    expect(before.state).toBe('active');
    expect(before.progress.current).toBeLessThan(3);
    expect(before.result).toBeUndefined();
    const now = await viewOf(stale, false, app.jobs.queue);
    expect(now).toMatchObject({ state: 'completed', progress: { current: 3, total: 3, percentage: 100 }, result: { steps: 3 } });
  });

  it('cancels a running job before its next step and removes a waiting one', async () => {
    const long = await submit(app, { steps: 400, stepMs: 20, tag: 'cancel-running' });
    // Concurrency 1: this one waits behind the long one.
    const queued = await submit(app, { steps: 2, stepMs: 1, tag: 'cancel-waiting' });
    await waitFor(app, long.id, (j) => j.state === 'active' && j.progress.current > 0);
    expect((await read(app, queued.id)).job.state).toBe('waiting');

    const removed = await app.inject({ method: 'DELETE', url: `/api/v1/jobs/${queued.id}`, headers: { 'x-tenant': 'tenant-a' } });
    expect(removed.statusCode).toBe(200);
    expect(removed.json().state).toBe('cancelled');
    expect((await read(app, queued.id)).status).toBe(404);

    const asked = await app.inject({ method: 'DELETE', url: `/api/v1/jobs/${long.id}`, headers: { 'x-tenant': 'tenant-a' } });
    expect(asked.statusCode).toBe(202);
    expect(asked.json().cancelRequested).toBe(true);
    const cancelled = await waitFor(app, long.id, (j) => j.state === 'cancelled');
    expect(cancelled.progress.current).toBeLessThan(400);
    expect(runs.finished.has(long.id)).toBe(false);
    expect(runs.started.some((r) => r.id === queued.id)).toBe(false);
    // A finished job is no longer cancellable.
    expect((await app.inject({ method: 'DELETE', url: `/api/v1/jobs/${long.id}`, headers: { 'x-tenant': 'tenant-a' } })).statusCode).toBe(409);
  });

  it("lists a tenant's own jobs only, newest first, filtered by state", async () => {
    const other = await submit(app, { steps: 1, stepMs: 1, tag: 'tenant-b' }, 'tenant-b');
    await waitFor(app, other.id, (j) => j.state === 'completed', 20_000, 'tenant-b');

    const listB = (await app.inject({ url: '/api/v1/jobs', headers: { 'x-tenant': 'tenant-b' } })).json();
    expect(listB.total).toBe(1);
    expect(listB.jobs[0].id).toBe(other.id);
    // Tenant a does not see it, not even by id.
    expect((await read(app, other.id, 'tenant-a')).status).toBe(404);

    const listA = (await app.inject({ url: '/api/v1/jobs?limit=100', headers: { 'x-tenant': 'tenant-a' } })).json();
    // 13 completed + the cancelled one (the removed waiting one is gone from the list).
    expect(listA.total).toBe(14);
    expect(listA.jobs.map((j: { id: string }) => j.id)).not.toContain(other.id);
    const created = listA.jobs.map((j: { createdAt: string }) => Date.parse(j.createdAt));
    expect(created).toEqual([...created].sort((a: number, b: number) => b - a));
    const done = (await app.inject({ url: '/api/v1/jobs?state=completed&limit=100', headers: { 'x-tenant': 'tenant-a' } })).json();
    expect(done.total).toBe(13);
    const cancelled = (await app.inject({ url: '/api/v1/jobs?state=cancelled', headers: { 'x-tenant': 'tenant-a' } })).json();
    expect(cancelled.total).toBe(1);
  });
});
