import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { startRedisServer, waitFor, type RedisServer } from '@aicache/test-redis';
import { registerJobs, DEFAULT_SETTINGS, SYSTEM_TENANT, type JobContext, type ScheduledKind } from '../src/index.js';

/**
 * Scheduled kinds on a private redis-server, with two apps on the same queue standing for two replicas: each tick runs
 * once in all, whichever replica takes it; a new interval replaces the scheduler; 0 removes it.
 */
let server: RedisServer;
let raw: Redis;
const SERVICE = 'sched-test';

interface Run {
  id: string;
  replica: string;
  tenant: string;
  at: number;
}

const runs: Run[] = [];

function tick(replica: string, everyMs: number): ScheduledKind {
  return {
    name: 'tick',
    summary: 'counts its runs',
    everyMs,
    run: async (ctx: JobContext<unknown>) => {
      runs.push({ id: ctx.id, replica, tenant: ctx.tenant, at: Date.now() });
      return { replica };
    },
  };
}

async function replica(name: string, everyMs: number): Promise<{ app: FastifyInstance; redis: Redis }> {
  const redis = new Redis(server.url);
  const app = Fastify({ logger: false });
  await registerJobs(app, { service: SERVICE, redis, settings: { ...DEFAULT_SETTINGS, closeGraceMs: 2000 }, kinds: [], schedules: [tick(name, everyMs)] });
  await app.ready();
  return { app, redis };
}

async function stop(r: { app: FastifyInstance; redis: Redis }): Promise<void> {
  await r.app.close();
  r.redis.disconnect();
}

const schedulerKey = `jobs:{${SERVICE}}:scheduled:repeat`;
/** The tick time in a scheduler job's id (`repeat:<kind>:<ms>`). */
const tickOf = (id: string) => Number(id.split(':').at(-1));

beforeAll(async () => {
  server = await startRedisServer({ args: ['--maxmemory-policy', 'noeviction'] });
  raw = new Redis(server.url);
}, 60_000);

afterAll(async () => {
  raw?.disconnect();
  await server?.stop();
});

describe('scheduled kinds', () => {
  it('two replicas with the same schedule: one scheduler, and each tick runs exactly once', async () => {
    const EVERY = 400;
    const a = await replica('a', EVERY);
    const b = await replica('b', EVERY);
    try {
      await waitFor('the scheduler', async () => ((await a.app.jobs.schedulers()).length === 1 ? true : undefined));
      expect(await raw.zcard(schedulerKey)).toBe(1);
      await waitFor('8 runs', () => (runs.length >= 8 ? true : undefined), 20_000);
    } finally {
      await stop(a);
      await stop(b);
    }
    const ticks = runs.map((r) => tickOf(r.id));
    // No tick twice, whichever replica took it, and the ticks are one interval apart (none skipped, none doubled).
    expect(new Set(runs.map((r) => r.id)).size).toBe(runs.length);
    const sorted = [...ticks].sort((x, y) => x - y);
    for (let i = 1; i < sorted.length; i++) expect(sorted[i]! - sorted[i - 1]!).toBe(EVERY);
    expect(runs.every((r) => r.tenant === SYSTEM_TENANT)).toBe(true);
    // Runs are at most one interval apart in time too (a tick is not held back): elapsed time / interval ≈ runs.
    const span = runs.at(-1)!.at - runs[0]!.at;
    expect(Math.round(span / EVERY)).toBeGreaterThanOrEqual(runs.length - 2);
    expect(Math.round(span / EVERY)).toBeLessThanOrEqual(runs.length);
  }, 40_000);

  it('the system jobs are listed for ?tenant=_system only, and a tick can be run now', async () => {
    const a = await replica('a', 60_000);
    try {
      const before = runs.length;
      const now = await a.app.inject({ method: 'POST', url: '/api/v1/jobs/schedules/tick/run' });
      expect(now.statusCode, now.body).toBe(202);
      const id = now.json().id as string;
      await waitFor('the run', () => (runs.length > before ? true : undefined));
      const job = await waitFor('completed', async () => {
        const res = await a.app.inject({ method: 'GET', url: `/api/v1/jobs/${id}?tenant=${SYSTEM_TENANT}` });
        const body = res.json() as { state: string; result?: unknown };
        return body.state === 'completed' ? body : undefined;
      });
      expect(job.result).toEqual({ replica: 'a' });
      const list = await a.app.inject({ method: 'GET', url: `/api/v1/jobs?tenant=${SYSTEM_TENANT}&limit=100` });
      expect(list.statusCode).toBe(200);
      const ids = (list.json().jobs as Array<{ id: string; kind: string }>).map((j) => j.id);
      expect(ids).toContain(id);
      // The ticks of the first test are there too (entered into the list when they started).
      expect(ids.some((i) => i.startsWith('repeat:tick:'))).toBe(true);
      expect(await raw.zcard(`jobs:{${SERVICE}}:tenant:acme`)).toBe(0);

      const unknown = await a.app.inject({ method: 'POST', url: '/api/v1/jobs/schedules/nope/run' });
      expect(unknown.statusCode).toBe(400);
      const schedules = await a.app.inject({ method: 'GET', url: '/api/v1/jobs/schedules' });
      expect(schedules.json().schedules).toMatchObject([{ kind: 'tick', everyMs: 60_000, scheduled: true }]);
    } finally {
      await stop(a);
    }
  }, 30_000);

  it('a new interval replaces the scheduler; 0 removes it and the ticks stop', async () => {
    const a = await replica('a', 400);
    await waitFor('the 400 ms scheduler', async () => ((await a.app.jobs.schedulers())[0]?.everyMs === 400 ? true : undefined));
    await stop(a);

    // A replica booting with another interval: still one scheduler, at the new interval.
    const b = await replica('b', 1500);
    try {
      const s = await waitFor('the 1500 ms scheduler', async () => {
        const all = await b.app.jobs.schedulers();
        return all[0]?.everyMs === 1500 ? all : undefined;
      });
      expect(s).toHaveLength(1);
      const from = runs.length;
      await waitFor('2 runs at the new interval', () => (runs.length >= from + 2 ? true : undefined), 10_000);
      const fresh = runs.slice(from).map((r) => tickOf(r.id));
      expect(fresh[1]! - fresh[0]!).toBe(1500);
    } finally {
      await stop(b);
    }

    const c = await replica('c', 0);
    try {
      await waitFor('no scheduler', async () => ((await c.app.jobs.schedulers()).length === 0 ? true : undefined));
      expect(await raw.zcard(schedulerKey)).toBe(0);
      // No pending tick either: nothing runs in the next three former intervals.
      const from = runs.length;
      await new Promise((r) => setTimeout(r, 4500));
      expect(runs.slice(from)).toEqual([]);
      const delayed = await c.app.jobs.scheduled!.getDelayedCount();
      expect(delayed).toBe(0);
    } finally {
      await stop(c);
    }
  }, 40_000);
});
