import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { startRedisServer, waitFor, type RedisServer } from '@aicache/test-redis';
import type { ServiceApp } from '@aicache/service-kit';
import { followJobEvents } from '@aicache/jobs/client';
import { ADMIN_TOKEN, authedConfig, makeApp, startFakeWorker, userKey, type FakeWorker } from './helpers.js';

/**
 * Bulk ingest through the job routes, on a private redis-server (noeviction, AOF) with authentication on: progress
 * followed over Server-Sent Events on a real socket, cancel, idempotency, tenancy, retry, and the eviction refusal.
 */
const DB = 3;
const AUTH_DB = 4;

let server: RedisServer;
let raw: Redis;
let worker: FakeWorker;
let app: ServiceApp;
let base = '';
const keys = { acme: '', globex: '' };

const configOf = (url: string, extra: Record<string, string> = {}) =>
  authedConfig(url, DB, AUTH_DB, worker.url, { JOBS_ATTEMPTS: '2', JOBS_BACKOFF_MS: '100', ...extra });

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

type As = keyof typeof keys;
const call = (as: As, method: 'GET' | 'POST' | 'DELETE', url: string, payload?: object, headers: Record<string, string> = {}) =>
  app.inject({ method, url, headers: { ...bearer(keys[as]), ...headers }, ...(payload ? { payload } : {}) });

function documents(n: number, tag: string) {
  return Array.from({ length: n }, (_, i) => ({
    id: `${tag}-${i}`,
    title: `${tag} document ${i}`,
    text: `Document ${i} of the ${tag} set talks about topic ${i % 17} and refund rule ${i % 5}. `.repeat(3),
  }));
}

interface Event {
  event: string;
  data: { state: string; progress: { current: number; total: number; percentage: number }; result?: Record<string, unknown> };
}

/** Reads the job's SSE stream over HTTP until the server ends it. */
const follow = (as: As, id: string) => followJobEvents<Event['data']>(`${base}/api/v1/jobs/${id}/events`, { headers: bearer(keys[as]) });

const jobOf = async (as: As, id: string) => (await call(as, 'GET', `/api/v1/jobs/${id}`)).json();
const documentCount = async (as: As) => (await call(as, 'GET', '/api/v1/documents?limit=1')).json().total as number;

beforeAll(async () => {
  server = await startRedisServer({ appendfsync: 'everysec', args: ['--maxmemory-policy', 'noeviction'] });
  raw = new Redis(server.url, { db: DB });
  worker = await startFakeWorker();
  app = await makeApp(configOf(server.url));
  base = await app.listen({ port: 0, host: '127.0.0.1' });
  keys.acme = await userKey(app, 'acme-writer', 'acme');
  keys.globex = await userKey(app, 'globex-writer', 'globex');
}, 60_000);

afterAll(async () => {
  await app?.close();
  await worker?.close();
  raw?.disconnect();
  await server?.stop();
});

describe('bulk ingest through the job route', () => {
  it('ingests 1,000 documents with monotone progress over SSE ending at 100 %, acting for the user at the worker', async () => {
    worker.delayMs = 20;
    const callsBefore = worker.calls.length;
    const body = { documents: documents(1000, 'bulk'), batchSize: 50 };
    const start = await call('acme', 'POST', '/api/v1/jobs/ingest', body);
    expect(start.statusCode, start.body).toBe(202);
    const job = start.json();
    // The documents wait beside the job, not in its record: every read of the job (each poll, each list line) is small.
    const jobKey = `jobs:{retrieval-proxy}:jobs:${job.id}`;
    const recordBytes = await raw.hstrlen(jobKey, 'data');
    expect(recordBytes).toBeGreaterThan(0);
    expect(recordBytes).toBeLessThan(2048);
    expect(JSON.stringify(body).length).toBeGreaterThan(200_000);
    expect(await raw.keys(`jobs:{retrieval-proxy}:input:${job.id}:*`)).toHaveLength(1);
    expect(job).toMatchObject({ kind: 'ingest', duplicate: false });
    expect(['waiting', 'active']).toContain(job.state);
    expect(start.headers.location).toBe(`/api/v1/jobs/${job.id}`);

    const { status, type, events } = await follow('acme', job.id);
    expect(status).toBe(200);
    expect(type).toMatch(/^text\/event-stream/);
    const progress = events.filter((e) => e.event === 'progress').map((e) => e.data.progress.percentage);
    expect(progress.length).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < progress.length; i++) expect(progress[i]).toBeGreaterThanOrEqual(progress[i - 1] as number);
    const last = events.at(-1)!;
    expect(last.event).toBe('completed');
    expect(last.data.progress).toEqual({ current: 1000, total: 1000, percentage: 100 });
    expect(last.data.result).toMatchObject({ documents: 1000, ingested: 1000, failedCount: 0 });

    expect(await documentCount('acme')).toBe(1000);
    expect(await documentCount('globex')).toBe(0);
    // 20 batches, each one worker call carrying a service token for the user (not the user's own key).
    const calls = worker.authorizations.slice(callsBefore);
    expect(calls).toHaveLength(20);
    for (const a of calls) {
      expect(a).toMatch(/^Bearer /);
      expect(a).not.toBe(`Bearer ${keys.acme}`);
    }
    const done = await jobOf('acme', job.id);
    expect(done).toMatchObject({ state: 'completed', attempts: 1 });
    // Once it completed, its documents are dropped (they are stored as documents now).
    expect(await raw.keys(`jobs:{retrieval-proxy}:input:${job.id}:*`)).toEqual([]);
    expect(done.durationMs).toBeGreaterThan(0);
    expect(Date.parse(done.finishedAt)).toBeGreaterThanOrEqual(Date.parse(done.startedAt));
    worker.delayMs = 0;
  }, 120_000);

  it('runs a job queued before documents were stored beside it (its documents inline in the record)', async () => {
    const docs = documents(6, 'inline').map((d) => ({ ...d }));
    await app.jobs.queue.add('ingest', { tenant: 'acme', input: { documents: docs, batchSize: 4 } }, { jobId: 'ingest-inline-before' });
    await waitFor('the inline job to complete', async () => ((await app.jobs.queue.getJobState('ingest-inline-before')) === 'completed' ? true : undefined));
    const job = await app.jobs.queue.getJob('ingest-inline-before');
    expect(job?.returnvalue).toMatchObject({ documents: 6, ingested: 6 });
    expect((await call('acme', 'GET', '/api/v1/documents/inline-5')).statusCode).toBe(200);
  });

  it('does not ingest twice: the same body, or the same Idempotency-Key, answers the job already started', async () => {
    const body = { documents: documents(30, 'idem'), batchSize: 10 };
    const first = await call('acme', 'POST', '/api/v1/jobs/ingest', body);
    const again = await call('acme', 'POST', '/api/v1/jobs/ingest', { batchSize: 10, documents: body.documents });
    expect(first.statusCode).toBe(202);
    expect(again.statusCode).toBe(202);
    expect(again.json()).toMatchObject({ id: first.json().id, duplicate: true });
    await follow('acme', first.json().id);
    const calls = worker.calls.length;
    const third = await call('acme', 'POST', '/api/v1/jobs/ingest', body);
    expect(third.json()).toMatchObject({ id: first.json().id, duplicate: true, state: 'completed' });
    expect(worker.calls.length).toBe(calls);

    const k1 = await call('acme', 'POST', '/api/v1/jobs/ingest', { documents: documents(2, 'key-a') }, { 'idempotency-key': 'upload-42' });
    const k2 = await call('acme', 'POST', '/api/v1/jobs/ingest', { documents: documents(3, 'key-b') }, { 'idempotency-key': 'upload-42' });
    expect(k2.json()).toMatchObject({ id: k1.json().id, duplicate: true });
    // The same key from another tenant is another job.
    const other = await call('globex', 'POST', '/api/v1/jobs/ingest', { documents: documents(2, 'key-a') }, { 'idempotency-key': 'upload-42' });
    expect(other.json().id).not.toBe(k1.json().id);
    await follow('acme', k1.json().id);
    await follow('globex', other.json().id);
  }, 60_000);

  it("answers another tenant's job exactly as an unknown one (read, list, cancel, retry, events)", async () => {
    const mine = (await call('acme', 'POST', '/api/v1/jobs/ingest', { documents: documents(3, 'private') })).json();
    const unknown = await call('globex', 'GET', '/api/v1/jobs/ingest-0000');
    expect(unknown.statusCode).toBe(404);
    const foreign = await call('globex', 'GET', `/api/v1/jobs/${mine.id}`);
    expect(foreign.statusCode).toBe(404);
    expect(foreign.json()).toMatchObject({ code: 'NOT_FOUND', message: `job '${mine.id}' not found` });
    expect((await call('globex', 'DELETE', `/api/v1/jobs/${mine.id}`)).statusCode).toBe(404);
    expect((await call('globex', 'POST', `/api/v1/jobs/${mine.id}/retry`)).statusCode).toBe(404);
    expect((await fetch(`${base}/api/v1/jobs/${mine.id}/events`, { headers: bearer(keys.globex) })).status).toBe(404);
    const theirs = (await call('globex', 'GET', '/api/v1/jobs?limit=100')).json();
    expect(theirs.jobs.map((j: { id: string }) => j.id)).not.toContain(mine.id);
    const ours = (await call('acme', 'GET', '/api/v1/jobs?kind=ingest&limit=100')).json();
    expect(ours.jobs.map((j: { id: string }) => j.id)).toContain(mine.id);
    await follow('acme', mine.id);
    expect((await call('acme', 'GET', '/api/v1/jobs?state=completed&limit=100')).json().jobs.every((j: { state: string }) => j.state === 'completed')).toBe(true);
    expect((await app.inject({ method: 'GET', url: `/api/v1/jobs/${mine.id}` })).statusCode).toBe(401);
  }, 60_000);

  it('cancels: a running job stops at its next batch, a waiting one is removed', async () => {
    worker.delayMs = 150;
    const running = (await call('acme', 'POST', '/api/v1/jobs/ingest', { documents: documents(200, 'cancel'), batchSize: 5 })).json();
    const queued = (await call('acme', 'POST', '/api/v1/jobs/ingest', { documents: documents(5, 'queued') })).json();
    await waitFor('the job to make progress', async () => ((await jobOf('acme', running.id)).progress.current >= 10 ? true : undefined));

    // Concurrency 1: the second job waits behind the first.
    expect((await jobOf('acme', queued.id)).state).toBe('waiting');
    const removed = await call('acme', 'DELETE', `/api/v1/jobs/${queued.id}`);
    expect(removed.statusCode).toBe(200);
    expect(removed.json().state).toBe('cancelled');
    expect((await call('acme', 'GET', `/api/v1/jobs/${queued.id}`)).statusCode).toBe(404);

    const cancel = await call('acme', 'DELETE', `/api/v1/jobs/${running.id}`);
    expect(cancel.statusCode).toBe(202);
    expect(cancel.json()).toMatchObject({ state: 'active', cancelRequested: true });
    const { events } = await follow('acme', running.id);
    const last = events.at(-1)!;
    expect(last.event).toBe('cancelled');
    expect(last.data.progress.current).toBeLessThan(200);
    const stoppedAt = last.data.progress.current;
    await new Promise((r) => setTimeout(r, 400));
    const docs = (await call('acme', 'GET', '/api/v1/documents?limit=100&offset=0')).json();
    const cancelDocs = (await Promise.all(Array.from({ length: 200 }, (_, i) => call('acme', 'GET', `/api/v1/documents/cancel-${i}`)))).filter((r) => r.statusCode === 200);
    expect(cancelDocs.length).toBe(stoppedAt);
    expect(docs.total).toBeGreaterThan(0);
    expect((await call('acme', 'DELETE', `/api/v1/jobs/${running.id}`)).statusCode).toBe(409);
    worker.delayMs = 0;

    // A cancelled job can be run again: it resumes after its last batch and finishes.
    const retry = await call('acme', 'POST', `/api/v1/jobs/${running.id}/retry`);
    expect(retry.statusCode, retry.body).toBe(202);
    const resumed = await follow('acme', running.id);
    expect(resumed.events.at(-1)).toMatchObject({ event: 'completed', data: { progress: { current: 200, total: 200 }, result: { resumedFrom: stoppedAt } } });
  }, 60_000);

  it('retries a failing worker with backoff, then fails; a retry after the worker is back completes', async () => {
    worker.garbage = true;
    const job = (await call('acme', 'POST', '/api/v1/jobs/ingest', { documents: documents(4, 'flaky') })).json();
    const { events } = await follow('acme', job.id);
    expect(events.at(-1)!.event).toBe('failed');
    expect((await jobOf('acme', job.id)).attempts).toBe(2);
    expect((await call('acme', 'POST', `/api/v1/jobs/${job.id}/retry`)).statusCode).toBe(202);
    worker.garbage = false;
    const again = await follow('acme', job.id);
    expect(again.events.at(-1)).toMatchObject({ event: 'completed', data: { result: { ingested: 4 } } });
    expect((await call('acme', 'POST', `/api/v1/jobs/${job.id}/retry`)).statusCode).toBe(409);
  }, 60_000);

  it('stops a job for good when the key that started it is revoked; another key of the tenant retries it to the end', async () => {
    worker.delayMs = 80;
    const key = await userKey(app, 'revoked-writer', 'acme');
    const me = (await app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: bearer(key) })).json().principal;
    expect(me.credentialId).toMatch(/^key_/);
    const start = await app.inject({ method: 'POST', url: '/api/v1/jobs/ingest', headers: bearer(key), payload: { documents: documents(80, 'revoke'), batchSize: 4 } });
    expect(start.statusCode, start.body).toBe(202);
    const id = start.json().id as string;
    await waitFor('the job to make progress', async () => ((await jobOf('acme', id)).progress.current >= 8 ? true : undefined));

    const revoked = await app.inject({ method: 'DELETE', url: `/api/v1/auth/keys/${me.credentialId}`, headers: bearer(ADMIN_TOKEN) });
    expect(revoked.statusCode, revoked.body).toBe(204);
    const { events } = await follow('acme', id);
    const last = events.at(-1)!;
    expect(last.event).toBe('failed');
    const failed = await jobOf('acme', id);
    expect(failed.error).toMatch(/revoked/);
    // Not tried again: the same credential would fail the same way.
    expect(failed.attempts).toBe(1);
    expect(last.data.progress.current).toBeLessThan(80);

    // A retry acts for the key that retries it (same tenant, allowed to start an ingest): it resumes and finishes.
    worker.delayMs = 0;
    expect((await call('acme', 'POST', `/api/v1/jobs/${id}/retry`)).statusCode).toBe(202);
    const again = await follow('acme', id);
    expect(again.events.at(-1)).toMatchObject({ event: 'completed', data: { progress: { current: 80, total: 80 } } });
  }, 60_000);

  it('answers bad input with 400 and a clear message, starting nothing', async () => {
    const empty = await call('acme', 'POST', '/api/v1/jobs/ingest', { documents: [] });
    expect(empty.statusCode).toBe(400);
    const dup = await call('acme', 'POST', '/api/v1/jobs/ingest', { documents: [documents(1, 'd')[0], documents(1, 'd')[0]] });
    expect(dup.statusCode).toBe(400);
    expect(dup.json().message).toBe("documents[1].id 'd-0' appears more than once in this request");
    expect((await call('acme', 'GET', '/api/v1/jobs?state=nope')).statusCode).toBe(400);
    // A document the chunker refuses is reported, the others are ingested.
    const mixed = (
      await call('acme', 'POST', '/api/v1/jobs/ingest', { documents: [{ id: 'ok-1', title: 't', text: 'fine text' }, { id: 'bad-1', title: 't', text: 'x', metadata: { source: 'reserved' } }] })
    ).json();
    const { events } = await follow('acme', mixed.id);
    expect(events.at(-1)!.data.result).toMatchObject({ ingested: 1, failedCount: 1, failed: [{ id: 'bad-1' }] });
  }, 30_000);
});

describe('the queue dashboard of the proxy', () => {
  it("is at /admin/queues for admins only, and lists the proxy's job queue with its jobs", async () => {
    expect((await fetch(`${base}/admin/queues/api/queues`)).status).toBe(401);
    expect((await fetch(`${base}/admin/queues/api/queues`, { headers: bearer(keys.acme) })).status).toBe(403);
    const res = await fetch(`${base}/admin/queues/api/queues`, { headers: bearer(ADMIN_TOKEN) });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { queues: Array<{ name: string; counts: Record<string, number> }> };
    const queue = body.queues.find((q) => q.name === 'jobs');
    expect(queue, JSON.stringify(body).slice(0, 300)).toBeDefined();
    expect(queue!.counts.completed).toBeGreaterThan(0);
    // The page itself: a browser without a credential gets the sign-in form.
    const page = await fetch(`${base}/admin/queues`, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(401);
    expect(await page.text()).toMatch(/<form/i);
  });
});

describe('an evicting state Redis', () => {
  it('keeps the service up and answers the job routes 503 naming the policy', async () => {
    const lru = await startRedisServer({ args: ['--maxmemory', '64mb', '--maxmemory-policy', 'allkeys-lru'] });
    const other = await makeApp(configOf(lru.url, { AUTH_MODE: 'off' }));
    try {
      const res = await other.inject({ method: 'POST', url: '/api/v1/jobs/ingest', payload: { documents: documents(1, 'x') } });
      expect(res.statusCode).toBe(503);
      expect(res.json().message).toMatch(/maxmemory-policy allkeys-lru.*noeviction/);
      expect((await other.inject({ method: 'GET', url: '/api/v1/jobs' })).statusCode).toBe(503);
      expect((await other.inject({ method: 'POST', url: '/api/v1/documents', payload: { title: 't', text: 'still served' } })).statusCode).toBe(201);
    } finally {
      await other.close();
      await lru.stop();
    }
  }, 30_000);
});
