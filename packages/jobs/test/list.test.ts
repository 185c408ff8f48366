import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import type { FastifyInstance } from 'fastify';
import { startRedisServer, uniqueName, type RedisServer } from '@aicache/test-redis';
import { jobsApp, submit, type JobViewLike } from './topology-app.js';

/**
 * GET /api/v1/jobs over a tenant's whole list (it keeps 10,000 ids): the page alone is read when nothing is
 * filtered, a filter looks at every job's kind and state, and jobs removed by retention leave the list.
 */
let server: RedisServer;
const clients: Redis[] = [];
const apps: FastifyInstance[] = [];

beforeAll(async () => {
  server = await startRedisServer({ args: ['--maxmemory-policy', 'noeviction'] });
});

afterAll(async () => {
  for (const app of apps) await app.close();
  for (const c of clients) c.disconnect();
  await server?.stop();
});

async function app(settings: Parameters<typeof jobsApp>[2]): Promise<FastifyInstance> {
  const redis = new Redis(server.url);
  clients.push(redis);
  const { app } = await jobsApp(redis, uniqueName('jobs-list'), settings);
  apps.push(app);
  return app;
}

interface ListAnswer {
  total: number;
  offset: number;
  limit: number;
  jobs: Array<JobViewLike & { kind: string; createdAt: string }>;
}

const list = async (a: FastifyInstance, query: string): Promise<ListAnswer> => {
  const res = await a.inject({ url: `/api/v1/jobs?${query}`, headers: { 'x-tenant': 'tenant-a' } });
  expect(res.statusCode, res.body.slice(0, 300)).toBe(200);
  return res.json() as ListAnswer;
};

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('the list of a tenant with more than a thousand jobs', () => {
  it('pages through all of them, and filters by kind and state over all of them, newest first', async () => {
    const a = await app({ concurrency: 4, keepCompletedCount: 5000 });
    const ids: string[] = [];
    for (let i = 0; i < 1200; i++) ids.push((await submit(a, { steps: 1, stepMs: 0, tag: `job-${i}` })).id);
    const solo = await a.inject({ method: 'POST', url: '/api/v1/jobs/solo', headers: { 'x-tenant': 'tenant-a' }, payload: { steps: 1, stepMs: 0 } });
    expect(solo.statusCode, solo.body).toBe(202);
    await until('every job to complete', async () => (await list(a, 'state=completed&limit=1')).total === 1201);

    const all = await list(a, 'limit=100&offset=1150');
    expect(all.total).toBe(1201);
    // Newest first: the solo job, then the steps jobs from the last submitted; the page ends with the first submitted.
    expect(all.jobs.map((j) => j.id)).toEqual(ids.slice(0, 51).reverse());
    expect((await list(a, 'limit=1')).jobs[0]!.id).toBe(solo.json().id);

    const steps = await list(a, 'kind=steps&limit=100&offset=1100');
    expect(steps.total).toBe(1200);
    expect(steps.jobs.map((j) => j.id)).toEqual(ids.slice(0, 100).reverse());
    const soloOnly = await list(a, 'kind=solo');
    expect([soloOnly.total, soloOnly.jobs.map((j) => j.kind)]).toEqual([1, ['solo']]);

    const timed = async (query: string) => {
      const t0 = performance.now();
      await list(a, query);
      return (performance.now() - t0).toFixed(1);
    };
    console.log(`[jobs list] 1,201 jobs: a page unfiltered ${await timed('limit=20')} ms, by kind ${await timed('kind=steps&limit=20')} ms, by state ${await timed('state=completed&limit=20')} ms`);
    const done = await list(a, 'state=completed&kind=steps&limit=50&offset=1180');
    expect(done.total).toBe(1200);
    expect(done.jobs.map((j) => j.id)).toEqual(ids.slice(0, 20).reverse());
    expect(done.jobs.every((j) => j.state === 'completed')).toBe(true);
    expect(await list(a, 'state=failed')).toMatchObject({ total: 0, jobs: [] });
  }, 120_000);

  it('drops the jobs retention removed, from the page and from the total, filtered or not', async () => {
    // One at a time: the jobs complete in the order submitted, so the 10 kept are the last 10 submitted.
    const a = await app({ concurrency: 1, keepCompletedCount: 10 });
    const ids: string[] = [];
    for (let i = 0; i < 25; i++) ids.push((await submit(a, { steps: 1, stepMs: 0, tag: `kept-${i}` })).id);
    await until('every job to finish', async () => (await list(a, 'state=waiting')).total + (await list(a, 'state=active')).total === 0);
    // BullMQ keeps the 10 last completed; the list reads 25 ids and drops those whose job is gone.
    const filtered = await list(a, 'state=completed&limit=100');
    expect(filtered.total).toBe(10);
    expect(filtered.jobs.map((j) => j.id)).toEqual(ids.slice(15).reverse());
    const page = await list(a, 'limit=100');
    expect(page.total).toBe(10);
    expect(page.jobs.map((j) => j.id)).toEqual(ids.slice(15).reverse());
  }, 60_000);
});
