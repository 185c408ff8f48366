import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startRedisServer, waitFor as poll, type RedisServer } from '@aicache/test-redis';
import type { ServiceApp } from '@aicache/service-kit';
import { loadConfig } from '../src/config.js';
import { makeApp, startFakeWorker, type FakeWorker } from './helpers.js';

/**
 * Jobs outliving their process and their Redis: a process killed with SIGKILL mid-job hands the job to another
 * (stalled-job detection) which finishes it with every document stored once; jobs queued before a state Redis crash
 * (AOF) run after its restart. The killed process is the built service (dist/server.js) in a child process.
 */
const AUTH_DB = 7;

let server: RedisServer;
let worker: FakeWorker;
const apps: ServiceApp[] = [];
const children: ChildProcess[] = [];

const env = (db: number, extra: Record<string, string> = {}): Record<string, string> => ({
  NODE_ENV: 'test',
  AUTH_MODE: 'off',
  LOG_LEVEL: 'silent',
  REDIS_URL: server.url,
  REDIS_DB_RETRIEVAL_PROXY: String(db),
  REDIS_DB_AUTH: String(AUTH_DB),
  MULTIMODAL_WORKER_URL: worker.url,
  PEER_TIMEOUT_MS: '5000',
  PEER_RETRIES: '0',
  JOBS_CONCURRENCY: '1',
  JOBS_STALLED_INTERVAL_MS: '500',
  JOBS_LOCK_DURATION_MS: '1000',
  ...extra,
});

async function inProcess(db: number, extra: Record<string, string> = {}): Promise<ServiceApp> {
  const app = await makeApp(loadConfig(env(db, extra)));
  apps.push(app);
  return app;
}

/** Polls through errors too: the child service may not answer yet, or any longer. */
const waitFor = <T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> => poll(what, () => fn().catch(() => undefined), timeoutMs);

const docs = (n: number, tag: string) => Array.from({ length: n }, (_, i) => ({ id: `${tag}-${i}`, title: `${tag} ${i}`, text: `The ${tag} text number ${i} about shipping and refunds.` }));

beforeAll(async () => {
  server = await startRedisServer({ appendfsync: 'always', args: ['--maxmemory-policy', 'noeviction'] });
  worker = await startFakeWorker();
}, 60_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const app of apps) await app.close().catch(() => undefined);
  await worker?.close();
  await server?.stop();
});

describe('a job whose process is killed', () => {
  it('is finished by another process, every document stored once', async () => {
    const DB = 5;
    const port = await freePort();
    const child = spawn(process.execPath, [fileURLToPath(new URL('../dist/server.js', import.meta.url))], {
      env: { ...process.env, ...env(DB, { PORT: String(port), HOST: '127.0.0.1' }) },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    children.push(child);
    const url = `http://127.0.0.1:${port}`;
    await waitFor('the child service', async () => ((await fetch(`${url}/health`)).ok ? true : undefined));

    worker.delayMs = 100;
    const callsBefore = worker.calls.length;
    const start = await fetch(`${url}/api/v1/jobs/ingest`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ documents: docs(100, 'kill'), batchSize: 5 }),
    });
    expect(start.status).toBe(202);
    const { id } = (await start.json()) as { id: string };
    const before = await waitFor('progress in the child', async () => {
      const job = (await (await fetch(`${url}/api/v1/jobs/${id}`)).json()) as { progress: { current: number } };
      return job.progress.current >= 20 ? job.progress.current : undefined;
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(before).toBeLessThan(100);

    const survivor = await inProcess(DB);
    const done = await waitFor('the job to finish in the survivor', async () => {
      const job = (await survivor.inject({ method: 'GET', url: `/api/v1/jobs/${id}` })).json();
      return job.state === 'completed' ? job : undefined;
    });
    expect(done.progress).toEqual({ current: 100, total: 100, percentage: 100 });
    expect(done.result.resumedFrom).toBeGreaterThanOrEqual(20);
    const list = (await survivor.inject({ method: 'GET', url: '/api/v1/documents?limit=100' })).json();
    expect(list.total).toBe(100);
    expect(new Set(list.documents.map((d: { id: string }) => d.id)).size).toBe(100);
    // Each batch is embedded once, except at most the one in flight at the kill.
    const calls = worker.calls.length - callsBefore;
    expect(calls).toBeGreaterThanOrEqual(20);
    expect(calls).toBeLessThanOrEqual(21);
    worker.delayMs = 0;
  }, 90_000);
});

describe('a state Redis restart', () => {
  it('keeps queued jobs (AOF), which run once a worker is there', async () => {
    const DB = 6;
    // This process only enqueues: the jobs wait.
    const front = await inProcess(DB, { JOBS_WORKER: 'false' });
    const ids: string[] = [];
    for (const tag of ['r1', 'r2']) {
      const res = await front.inject({ method: 'POST', url: '/api/v1/jobs/ingest', payload: { documents: docs(10, tag) } });
      expect(res.statusCode).toBe(202);
      ids.push(res.json().id);
    }
    await server.kill();
    await server.restart();

    const back = await inProcess(DB);
    for (const id of ids) {
      const job = await waitFor('the queued job to run', async () => {
        const j = (await back.inject({ method: 'GET', url: `/api/v1/jobs/${id}` })).json();
        return j.state === 'completed' ? j : undefined;
      });
      expect(job.result).toMatchObject({ ingested: 10 });
    }
    expect((await back.inject({ method: 'GET', url: '/api/v1/documents?limit=1' })).json().total).toBe(20);
  }, 90_000);
});
