import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { startRedisServer, type RedisServer } from '@aicache/test-redis';
import { followJobEvents } from '../src/client.js';
import { jobsApp, stateClientOf, submit, workerRunning } from './topology-app.js';

/** The event stream of a job (GET /api/v1/jobs/:id/events) against a real Redis. */
let server: RedisServer;
let redis: Redis;
let app: FastifyInstance;
let base: string;

beforeAll(async () => {
  server = await startRedisServer({ args: ['--maxmemory-policy', 'noeviction'] });
  redis = stateClientOf({ REDIS_URL: server.url }) as Redis;
  // Route calls bounded at 300 ms, so a paused Redis shows as unanswered reads quickly.
  ({ app } = await jobsApp(redis, 'events-test', { concurrency: 1 }, 300));
  await app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  await workerRunning(app);
}, 60_000);

afterAll(async () => {
  server?.resume();
  await app?.close();
  redis?.disconnect();
  await server?.stop();
});

interface Event {
  event: string;
  data: { state: string; progress: { current: number; total: number }; result?: unknown };
}

/** Follows the stream to its end; `onEvent` sees each event as it comes. */
async function follow(id: string, onEvent: (e: Event) => void = () => undefined): Promise<Event[]> {
  const { status, events } = await followJobEvents<Event['data']>(`${base}/api/v1/jobs/${id}/events`, { headers: { 'x-tenant': 'tenant-a' } }, onEvent);
  expect(status).toBe(200);
  return events;
}

async function hgetallCalls(): Promise<number> {
  const info = await redis.info('commandstats');
  return Number(/^cmdstat_hgetall:calls=(\d+)/m.exec(info)?.[1] ?? 0);
}

describe('the job event stream', () => {
  it('reads the whole job (its input with it) only when its state changes, not on every tick', async () => {
    // A 2 MB input, as a bulk ingest's is; 20 steps of 40 ms, read by the stream every 50 ms.
    const padding = 'x'.repeat(2 * 1024 * 1024);
    const job = await submit(app, { steps: 20, stepMs: 40, tag: 'whole-reads', padding });
    const before = await hgetallCalls();
    const events = await follow(job.id);
    const whole = (await hgetallCalls()) - before;

    const progress = events.filter((e) => e.event === 'progress').map((e) => e.data.progress.current);
    expect(progress.length).toBeGreaterThanOrEqual(5);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(events.at(-1)).toMatchObject({ event: 'completed', data: { state: 'completed', progress: { current: 20, total: 20 }, result: { steps: 20 } } });
    // The first read, one when it starts running, one when it finishes (and one more at most for a read that met a
    // change half-way), where every tick read it whole before.
    expect(whole).toBeLessThanOrEqual(4);
    process.stdout.write(`event stream: ${events.length} events, ${whole} whole reads of the job\n`);
  });

  it('keeps following through a Redis pause instead of announcing a cancel, and ends with the job completed', async () => {
    const job = await submit(app, { steps: 30, stepMs: 40, tag: 'paused' });
    let paused = false;
    const events = await follow(job.id, (e) => {
      if (!paused && e.event === 'progress' && e.data.progress.current >= 3) {
        paused = true;
        server.pause();
        setTimeout(() => server.resume(), 1000);
      }
    });
    expect(paused).toBe(true);
    expect(events.map((e) => e.event)).not.toContain('cancelled');
    expect(events.at(-1)).toMatchObject({ event: 'completed', data: { progress: { current: 30, total: 30 } } });
  });
});
