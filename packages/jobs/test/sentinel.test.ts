import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { askNode, parseInfo, startRedisSentinel, type RedisSentinelSet } from '@aicache/test-redis';
import { jobsApp, read, stateClientOf, submit, waitFor, workerRunning, type Runs } from './topology-app.js';

/**
 * The job queue behind Sentinel, through the state client a service builds from REDIS_SENTINELS: jobs queued and one
 * running when the primary is switched over (SENTINEL FAILOVER) all finish on the new primary, none lost and none
 * run to its end twice.
 */
const SERVICE = 'sentinel-jobs';
const QUEUED = 20;
const LONG_STEPS = 30;
let set: RedisSentinelSet;
let redis: Redis;
let app: FastifyInstance;
let runs: Runs;

beforeAll(async () => {
  set = await startRedisSentinel({ replicas: 1, args: ['--maxmemory-policy', 'noeviction'] });
  redis = stateClientOf({ REDIS_SENTINELS: set.sentinelsEnv, REDIS_SENTINEL_NAME: set.name }) as Redis;
  // Short lock and stalled check, so a job whose lock could not be renewed across the switch is handed over quickly.
  ({ app, runs } = await jobsApp(redis, SERVICE, { concurrency: 1, lockDurationMs: 4000, stalledIntervalMs: 2000, backoffMs: 200 }));
  await workerRunning(app);
}, 90_000);

afterAll(async () => {
  await app?.close();
  redis?.disconnect();
  await set?.stop();
});

describe('jobs behind Sentinel', () => {
  const scenario = async (how: 'SENTINEL FAILOVER' | 'kill -9 of the primary', tag: string): Promise<void> => {
    expect(app.jobs.worker?.isRunning()).toBe(true);
    const before = await set.primary();
    // One job running (concurrency 1) while the others wait behind it.
    const long = await submit(app, { steps: LONG_STEPS, stepMs: 100, tag: `${tag}-running` });
    const queued: string[] = [];
    for (let i = 0; i < QUEUED; i++) queued.push((await submit(app, { steps: 2, stepMs: 5, tag: `${tag}-queued-${i}` })).id);
    await waitFor(app, long.id, (j) => j.state === 'active' && j.progress.current >= 3);
    const waiting = (await app.inject({ url: '/api/v1/jobs?state=waiting&limit=100' })).json();
    expect(waiting.total).toBe(QUEUED);
    // The replica has every job before the switch (a Sentinel failover promotes it as it is).
    await set.waitSynced();

    const t0 = Date.now();
    if (how === 'SENTINEL FAILOVER') await askNode(set.sentinels[0]!, undefined, (c) => c.call('SENTINEL', 'FAILOVER', set.name));
    else await before.kill();
    let after = before;
    while (after === before && Date.now() - t0 < 30_000) {
      await new Promise((r) => setTimeout(r, 100));
      after = await set.primary().catch(() => before);
    }
    const switchedMs = Date.now() - t0;
    expect(after).not.toBe(before);

    const done = await waitFor(app, long.id, (j) => j.state === 'completed', 60_000);
    for (const id of queued) await waitFor(app, id, (j) => j.state === 'completed', 60_000);
    const allDoneMs = Date.now() - t0;

    expect(done.progress).toEqual({ current: LONG_STEPS, total: LONG_STEPS, percentage: 100 });
    expect(done.result).toEqual({ steps: LONG_STEPS });
    // Every job ran to its end exactly once; the running one at most resumed (never restarted from 0 after progress).
    for (const id of [long.id, ...queued]) expect(runs.finished.get(id), id).toBe(1);
    const longRuns = runs.started.filter((r) => r.id === long.id);
    for (const r of longRuns.slice(1)) expect(r.resumeFrom).toBeGreaterThan(0);

    // The queue lives on the new primary: its completed set holds every job.
    const completed = (await askNode(after, undefined, (c) => c.zrange(`jobs:{${SERVICE}}:jobs:completed`, '0', '-1'))) as string[];
    for (const id of [long.id, ...queued]) expect(completed).toContain(id);
    const role = await askNode(after, undefined, async (c) => parseInfo(await c.info('replication')).role);
    expect(role).toBe('master');

    // And it takes new jobs.
    const next = await submit(app, { steps: 1, stepMs: 1, tag: `${tag}-after` });
    expect((await waitFor(app, next.id, (j) => j.state === 'completed')).result).toEqual({ steps: 1 });
    expect((await read(app, next.id)).status).toBe(200);

    process.stdout.write(
      `${how}: primary ${before.port} -> ${after.port} in ${switchedMs} ms; ${QUEUED} queued + 1 running job all completed ` +
        `${allDoneMs} ms after the ${how}; the running one ran ${longRuns.length} time(s) (attempts ${done.attempts}, ` +
        `resumed from ${longRuns.map((r) => r.resumeFrom).join(', ')}), 0 lost\n`,
    );
  };

  it('runs the queued jobs and the one running on the new primary after SENTINEL FAILOVER, none lost', () => scenario('SENTINEL FAILOVER', 'switch'), 120_000);

  // The old primary is now a replica; this time the primary dies (Sentinel votes it down after down-after-milliseconds).
  it('runs them all on the new primary after the primary is killed, none lost', () => scenario('kill -9 of the primary', 'kill'), 120_000);
});
