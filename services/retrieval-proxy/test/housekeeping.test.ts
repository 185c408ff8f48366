import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { startRedisServer, waitFor, type RedisServer } from '@aicache/test-redis';
import type { ServiceApp } from '@aicache/service-kit';
import { ADMIN_TOKEN, authedConfig, docs, makeApp, startFakeWorker, type FakeWorker } from './helpers.js';

/**
 * The proxy's housekeeping jobs on a private redis-server (noeviction) with authentication on: stats snapshots with
 * the real figures of searches and documents, read at the admin route; the cleanup removing planted leftovers (ids of
 * removed jobs, cancel flags of finished ones, references to sessions and keys that expired in Redis) and nothing live.
 */
const DB = 5;
const AUTH_DB = 6;
const PASSWORD = 'correct horse battery staple';
const JOBS = 'jobs:{retrieval-proxy}';
const STREAM = 'state:retrieval-proxy:stats:history';

let server: RedisServer;
let raw: Redis;
let auth: Redis;
let worker: FakeWorker;
let app: ServiceApp;
const keys = { write: '', read: '', admin: '' };
let userId = '';

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const as = (token: string, method: 'GET' | 'POST' | 'DELETE', url: string, payload?: object) =>
  app.inject({ method, url, headers: bearer(token), ...(payload ? { payload } : {}) });

async function newKey(scopes: string[], forUser = userId): Promise<{ key: string; id: string }> {
  const res = await as(ADMIN_TOKEN, 'POST', '/api/v1/auth/keys', { name: scopes.join('-'), scopes, userId: forUser });
  expect(res.statusCode, res.body).toBe(201);
  return { key: res.json().key as string, id: res.json().record?.id ?? res.json().id };
}

beforeAll(async () => {
  server = await startRedisServer({ args: ['--maxmemory-policy', 'noeviction'] });
  raw = new Redis(server.url, { db: DB });
  auth = new Redis(server.url, { db: AUTH_DB });
  worker = await startFakeWorker();
  app = await makeApp(
    authedConfig(server.url, DB, AUTH_DB, worker.url, {
      // Snapshots every 300 ms; the cleanup only when asked (run now), so the planted leftovers are there until then.
      JOBS_HOUSEKEEPING_INTERVAL_MS: '300',
      JOBS_CLEANUP_INTERVAL_MS: '0',
      STATE_TIMEOUT_MS: '1000',
    }),
  );
  const user = await as(ADMIN_TOKEN, 'POST', '/api/v1/auth/users', { username: 'hk-writer', password: PASSWORD, tenant: 'acme', role: 'admin' });
  expect(user.statusCode, user.body).toBe(201);
  userId = user.json().id as string;
  keys.write = (await newKey(['write'])).key;
  keys.read = (await newKey(['read'])).key;
  keys.admin = (await newKey(['admin'])).key;
}, 60_000);

afterAll(async () => {
  await app?.close();
  await worker?.close();
  raw?.disconnect();
  auth?.disconnect();
  await server?.stop();
});

describe('stats snapshots', () => {
  it('records the real cache figures and corpus size, readable by admins only', async () => {
    for (const doc of [docs.refunds, docs.shipping]) expect((await as(keys.write, 'POST', '/api/v1/documents', doc)).statusCode).toBe(201);
    const search = () => as(keys.read, 'POST', '/api/v1/search', { query: 'refund within 30 days', limit: 3 });
    expect((await search()).headers['x-cache']).toBe('miss');
    expect((await search()).headers['x-cache']).toBe('hit');
    expect((await search()).headers['x-cache']).toBe('hit');

    const snap = await waitFor('a snapshot with the searches and documents', async () => {
      const res = await as(ADMIN_TOKEN, 'GET', '/api/v1/cache/stats/history?limit=1');
      expect(res.statusCode, res.body).toBe(200);
      const s = res.json().snapshots[0];
      return s && s.documents === 2 && s.categories.search_results.hits >= 2 ? s : undefined;
    });
    expect(snap).toMatchObject({ cacheConnected: true, documents: 2 });
    expect(snap.chunks).toBeGreaterThanOrEqual(2);
    expect(snap.categories.search_results).toMatchObject({ hits: 2, misses: 1 });
    expect(snap.hits).toBeGreaterThanOrEqual(2);
    expect(snap.hitRate).toBeGreaterThan(0);
    // The same entry, as stored on the state Redis.
    const [[id, fields]] = (await raw.xrevrange(STREAM, '+', '-', 'COUNT', 1)) as [[string, string[]]];
    expect(id).toBe(snap.id);
    expect(fields).toEqual(expect.arrayContaining(['documents', '2']));

    // Newest first, several ticks, as many as asked.
    await waitFor('3 snapshots', async () => ((await raw.xlen(STREAM)) >= 3 ? true : undefined));
    const three = (await as(keys.admin, 'GET', '/api/v1/cache/stats/history?limit=3')).json().snapshots as Array<{ id: string; at: string }>;
    expect(three).toHaveLength(3);
    expect(Date.parse(three[0]!.at)).toBeGreaterThan(Date.parse(three[2]!.at));

    for (const token of [keys.read, keys.write]) {
      const denied = await as(token, 'GET', '/api/v1/cache/stats/history');
      expect(denied.statusCode).toBe(403);
    }
    expect((await app.inject({ method: 'GET', url: '/api/v1/cache/stats/history' })).statusCode).toBe(401);
    expect((await as(ADMIN_TOKEN, 'GET', '/api/v1/cache/stats/history?limit=0')).statusCode).toBe(400);

    // The snapshot jobs are the system's: not in the user's list, in the system list for admins.
    const mine = (await as(keys.write, 'GET', '/api/v1/jobs?limit=100')).json();
    expect(mine.jobs.filter((j: { kind: string }) => j.kind === 'stats-snapshot')).toEqual([]);
    expect((await as(keys.write, 'GET', '/api/v1/jobs?tenant=_system')).statusCode).toBe(403);
    expect((await as(keys.write, 'GET', '/api/v1/jobs?tenant=globex')).statusCode).toBe(403);
    // An admin reads the system's jobs, but no other tenant's; its own tenant by name is its usual list.
    expect((await as(keys.admin, 'GET', '/api/v1/jobs?tenant=globex')).statusCode).toBe(403);
    expect((await as(keys.write, 'GET', '/api/v1/jobs?tenant=acme')).statusCode).toBe(200);
    const system = (await as(keys.admin, 'GET', '/api/v1/jobs?tenant=_system&kind=stats-snapshot&limit=5')).json();
    expect(system.jobs.length).toBeGreaterThan(0);
    const done = system.jobs.find((j: { state: string }) => j.state === 'completed');
    expect(done.result).toMatchObject({ documents: 2 });
    // On the queue dashboard, as a queue of its own beside the users' jobs.
    const board = await as(ADMIN_TOKEN, 'GET', '/admin/queues/api/queues');
    expect(board.statusCode).toBe(200);
    const scheduled = (board.json().queues as Array<{ name: string; counts: Record<string, number> }>).find((q) => q.name === 'scheduled');
    expect(scheduled?.counts.completed).toBeGreaterThan(0);
    const schedules = (await as(ADMIN_TOKEN, 'GET', '/api/v1/jobs/schedules')).json().schedules;
    expect(schedules).toEqual([
      expect.objectContaining({ kind: 'stats-snapshot', everyMs: 300, scheduled: true }),
      expect.objectContaining({ kind: 'cleanup', everyMs: 0, scheduled: false }),
    ]);
  }, 60_000);
});

describe('cleanup of leftovers', () => {
  it('removes planted orphans and leaves live state alone', async () => {
    // Leftovers: ids of jobs retention removed, a cancel flag of a job that is gone and one of a job that completed.
    await raw.zadd(`${JOBS}:tenant:acme`, 1, 'ingest-removed-1', 2, 'ingest-removed-2');
    await raw.zadd(`${JOBS}:tenant:globex`, 1, 'ingest-removed-3');
    await raw.set(`${JOBS}:cancel:ingest-removed-1`, '1', 'EX', 3600);
    const small = (await as(keys.write, 'POST', '/api/v1/jobs/ingest', { documents: [{ id: 'a', title: 'A', text: 'alpha' }] })).json();
    await waitFor('the small job', async () => ((await as(keys.write, 'GET', `/api/v1/jobs/${small.id}`)).json().state === 'completed' ? true : undefined));
    await raw.set(`${JOBS}:cancel:${small.id}`, '1', 'EX', 3600);

    // A session and a key that expire in Redis (their user's sets keep naming them), and a live session and key.
    const login = async () => (await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: 'hk-writer', password: PASSWORD } })).json().token as string;
    const sessionsKey = `auth:user:${userId}:sessions`;
    const keysKey = `auth:user:${userId}:keys`;
    const before = await auth.smembers(sessionsKey);
    const doomedSession = await login();
    const doomedDigest = (await auth.smembers(sessionsKey)).find((d) => !before.includes(d))!;
    const liveSession = await login();
    await auth.pexpire(`auth:session:${doomedDigest}`, 1);
    const doomedKey = await newKey(['read']);
    await auth.pexpire(`auth:keyid:${doomedKey.id}`, 1);
    await new Promise((r) => setTimeout(r, 20));
    expect((await app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: bearer(doomedSession) })).statusCode).toBe(401);
    const sessionCount = await auth.scard(sessionsKey);
    const keyCount = await auth.scard(keysKey);

    // A job running during the cleanup (its list entry stays), and one waiting behind it (one job at a time) whose
    // cancel is asked for (its flag stays: it is read when the job starts).
    worker.delayMs = 800;
    const running = (
      await as(keys.write, 'POST', '/api/v1/jobs/ingest', { documents: ['x', 'y', 'z', 'w'].map((id) => ({ id, title: id, text: `text ${id}` })), batchSize: 1 })
    ).json();
    await waitFor('the job to run', async () => ((await as(keys.write, 'GET', `/api/v1/jobs/${running.id}`)).json().state === 'active' ? true : undefined));
    const waiting = (await as(keys.write, 'POST', '/api/v1/jobs/ingest', { documents: [{ id: 'v', title: 'v', text: 'text v' }] })).json();
    expect(waiting.state).toBe('waiting');
    await raw.set(`${JOBS}:cancel:${waiting.id}`, '1', 'EX', 3600);

    const started = await as(keys.admin, 'POST', '/api/v1/jobs/schedules/cleanup/run');
    expect(started.statusCode, started.body).toBe(202);
    const cleanup = await waitFor('the cleanup', async () => {
      const job = (await as(keys.admin, 'GET', `/api/v1/jobs/${started.json().id}?tenant=_system`)).json();
      return job.state === 'completed' || job.state === 'failed' ? job : undefined;
    });
    expect(cleanup.state, cleanup.error).toBe('completed');
    expect((await as(keys.write, 'GET', `/api/v1/jobs/${running.id}`)).json().state).toBe('active');
    expect(cleanup.result).toMatchObject({ jobIndexIds: 3, cancelFlags: 2, sessionRefs: 1, keyRefs: 1, complete: true });

    // Gone: the planted ids, the two flags, the expired references.
    expect(await raw.zmscore(`${JOBS}:tenant:acme`, 'ingest-removed-1', 'ingest-removed-2')).toEqual([null, null]);
    expect(await raw.exists(`${JOBS}:tenant:globex`)).toBe(0);
    expect(await raw.exists(`${JOBS}:cancel:ingest-removed-1`, `${JOBS}:cancel:${small.id}`)).toBe(0);
    expect(await auth.sismember(sessionsKey, doomedDigest)).toBe(0);
    expect(await auth.sismember(keysKey, doomedKey.id)).toBe(0);
    expect(await auth.scard(sessionsKey)).toBe(sessionCount - 1);
    expect(await auth.scard(keysKey)).toBe(keyCount - 1);
    // Kept: the running and waiting jobs' entries, the waiting one's flag, the finished job's entry, the live session and keys.
    expect(await raw.zrange(`${JOBS}:tenant:acme`, '0', '-1')).toEqual(expect.arrayContaining([running.id, waiting.id, small.id]));
    expect(await raw.exists(`${JOBS}:cancel:${waiting.id}`)).toBe(1);
    expect((await app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: bearer(liveSession) })).statusCode).toBe(200);
    expect((await as(keys.read, 'GET', '/api/v1/documents?limit=1')).statusCode).toBe(200);

    // A second run finds nothing more.
    const again = await as(ADMIN_TOKEN, 'POST', '/api/v1/jobs/schedules/cleanup/run');
    const second = await waitFor('the second cleanup', async () => {
      const job = (await as(ADMIN_TOKEN, 'GET', `/api/v1/jobs/${again.json().id}?tenant=_system`)).json();
      return job.state === 'completed' ? job : undefined;
    });
    expect(second.result).toMatchObject({ jobIndexIds: 0, cancelFlags: 0, sessionRefs: 0, keyRefs: 0 });
    worker.delayMs = 0;
    const stateOf = async (id: string) => (await as(keys.write, 'GET', `/api/v1/jobs/${id}`)).json().state as string;
    await waitFor('the running job to end', async () => ((await stateOf(running.id)) === 'completed' ? true : undefined));
    // The flag the cleanup kept did its work.
    await waitFor('the waiting job to be cancelled', async () => ((await stateOf(waiting.id)) === 'cancelled' ? true : undefined));
  }, 60_000);

  it('a read key may not run a scheduled job; an unknown kind is a 400', async () => {
    expect((await as(keys.read, 'POST', '/api/v1/jobs/schedules/cleanup/run')).statusCode).toBe(403);
    expect((await as(keys.write, 'GET', '/api/v1/jobs/schedules')).statusCode).toBe(403);
    expect((await as(ADMIN_TOKEN, 'POST', '/api/v1/jobs/schedules/nope/run')).statusCode).toBe(400);
  });
});

describe('a state Redis that does not answer', () => {
  it('turns the history route and run-now into 503s within the state timeout, and recovers', async () => {
    server.pause();
    try {
      const t0 = Date.now();
      const history = await as(ADMIN_TOKEN, 'GET', '/api/v1/cache/stats/history');
      expect(history.statusCode).toBe(503);
      expect(history.json().message).toMatch(/stats history/);
      const run = await as(ADMIN_TOKEN, 'POST', '/api/v1/jobs/schedules/stats-snapshot/run');
      expect(run.statusCode).toBe(503);
      expect(Date.now() - t0).toBeLessThan(5000);
    } finally {
      server.resume();
    }
    const back = await waitFor('the route to answer again', async () => {
      const res = await as(ADMIN_TOKEN, 'GET', '/api/v1/cache/stats/history?limit=1');
      return res.statusCode === 200 ? (res.json() as { snapshots: unknown[] }) : undefined;
    });
    expect(back.snapshots).toHaveLength(1);
  }, 30_000);
});
