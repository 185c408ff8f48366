import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { startRedisServer, type RedisServer } from '@aicache/test-redis';
import { jobsApp, stateClientOf, waitFor, workerRunning, type JobViewLike, type Runs } from './topology-app.js';

/**
 * An exclusive kind ('solo', as the re-embed of the whole index): at most one job of it waits or runs at once, decided
 * by Redis in the script that adds the job, so submissions racing each other cannot both start one. Two apps share
 * the queue, as two replicas of a service do.
 */
let server: RedisServer;
const clients: Redis[] = [];
let a: FastifyInstance;
let b: FastifyInstance;
let runsA: Runs;
let runsB: Runs;

beforeAll(async () => {
  server = await startRedisServer({ args: ['--maxmemory-policy', 'noeviction'] });
  const client = (): Redis => {
    const c = stateClientOf({ REDIS_URL: server.url }) as Redis;
    clients.push(c);
    return c;
  };
  ({ app: a, runs: runsA } = await jobsApp(client(), 'exclusive-test', { concurrency: 2 }));
  ({ app: b, runs: runsB } = await jobsApp(client(), 'exclusive-test', { concurrency: 2 }));
  await workerRunning(a);
  await workerRunning(b);
}, 60_000);

afterAll(async () => {
  await a?.close();
  await b?.close();
  for (const c of clients) c.disconnect();
  await server?.stop();
});

const ADMIN = { 'x-scopes': 'admin' };
const start = (app: FastifyInstance, body: object, tenant = 'tenant-a') =>
  app.inject({ method: 'POST', url: '/api/v1/jobs/solo', headers: { 'x-tenant': tenant, ...ADMIN }, payload: body });
const manage = (app: FastifyInstance, method: 'DELETE' | 'POST', id: string, headers: Record<string, string> = ADMIN) =>
  app.inject({ method, url: method === 'DELETE' ? `/api/v1/jobs/${id}` : `/api/v1/jobs/${id}/retry`, headers: { 'x-tenant': 'tenant-a', ...headers } });

async function unfinishedSolo(): Promise<string[]> {
  const jobs = await a.jobs.unfinished('solo');
  return jobs.map((j) => String(j.id));
}

describe('an exclusive job kind', () => {
  it('of 12 different submissions sent at once through two replicas, exactly one starts; the others are 409 and keep nothing', async () => {
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) => start(i % 2 ? b : a, { steps: 8, stepMs: 40, tag: `race-${i}` }, i % 3 ? 'tenant-a' : 'tenant-b')),
    );
    const statuses = answers.map((r) => r.statusCode);
    expect(statuses.filter((s) => s === 202), JSON.stringify(statuses)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(11);
    const winner = answers.find((r) => r.statusCode === 202)!.json<JobViewLike>();
    for (const loser of answers.filter((r) => r.statusCode === 409)) expect(loser.json().message).toMatch(/already under way/);
    expect(await unfinishedSolo()).toEqual([winner.id]);
    // What prepare stored for the eleven that lost was dropped again.
    expect([...runsA.prepared, ...runsB.prepared]).toEqual([winner.id]);

    const tenant = answers.findIndex((r) => r.statusCode === 202) % 3 ? 'tenant-a' : 'tenant-b';
    await waitFor(a, winner.id, (j) => j.state === 'completed', 20_000, tenant);
    // Once it finished, the kind is free again.
    const next = await start(a, { steps: 1, stepMs: 0, tag: 'after-race' });
    expect(next.statusCode, next.body).toBe(202);
    await waitFor(a, next.json<JobViewLike>().id, (j) => j.state === 'completed');
  });

  it('the same body again answers the job under way (not a 409); a cancelled waiting job frees the kind', async () => {
    const first = await start(a, { steps: 20, stepMs: 50, tag: 'idem' });
    expect(first.statusCode).toBe(202);
    const again = await start(b, { steps: 20, stepMs: 50, tag: 'idem' });
    expect(again.statusCode).toBe(202);
    expect(again.json()).toMatchObject({ id: first.json().id, duplicate: true });

    // Stopping it takes what starting it takes: a write key of the tenant reads it but may not cancel it.
    const byWriter = await manage(a, 'DELETE', first.json().id, { 'x-scopes': 'write' });
    expect(byWriter.statusCode, byWriter.body).toBe(403);
    expect((await a.inject({ method: 'GET', url: `/api/v1/jobs/${first.json().id}`, headers: { 'x-tenant': 'tenant-a', 'x-scopes': 'read' } })).statusCode).toBe(200);
    const cancel = await manage(a, 'DELETE', first.json().id);
    expect([200, 202]).toContain(cancel.statusCode);
    await waitFor(a, first.json().id, (j) => j.state === 'cancelled').catch(() => undefined);
    const after = await start(b, { steps: 1, stepMs: 0, tag: 'after-cancel' });
    expect(after.statusCode, after.body).toBe(202);
    await waitFor(b, after.json<JobViewLike>().id, (j) => j.state === 'completed');
  });

  it('a failed job is retried only while no other job of the kind waits or runs, and its retry holds the kind', async () => {
    // It fails at once on its first run; its retry then takes 10 steps of 40 ms.
    const failed = (await start(a, { steps: 10, stepMs: 40, fail: true, tag: 'fails' })).json<JobViewLike>();
    await waitFor(a, failed.id, (j) => j.state === 'failed');

    const running = await start(b, { steps: 15, stepMs: 40, tag: 'holds-the-kind' });
    expect(running.statusCode).toBe(202);
    const refused = await manage(a, 'POST', failed.id);
    expect(refused.statusCode, refused.body).toBe(409);
    expect(refused.json().message).toContain(running.json().id);
    await waitFor(b, running.json<JobViewLike>().id, (j) => j.state === 'completed');

    expect((await manage(a, 'POST', failed.id, { 'x-scopes': 'write' })).statusCode).toBe(403);
    const retried = await manage(a, 'POST', failed.id);
    expect(retried.statusCode, retried.body).toBe(202);
    // While the retried job waits or runs, a new submission of the kind is refused.
    const blocked = await start(b, { steps: 1, stepMs: 0, tag: 'while-retried' });
    expect(blocked.statusCode, blocked.body).toBe(409);
    expect(blocked.json().message).toContain(failed.id);
    await waitFor(a, failed.id, (j) => j.state === 'completed');
    // ... and once it completed, the kind is free.
    const free = await start(b, { steps: 1, stepMs: 0, tag: 'after-retry' });
    expect(free.statusCode, free.body).toBe(202);
    await waitFor(b, free.json<JobViewLike>().id, (j) => j.state === 'completed');
  });
});
