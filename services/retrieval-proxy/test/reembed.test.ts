import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServer } from '@aicache/test-redis';
import type { ServiceApp } from '@aicache/service-kit';
import { loadConfig } from '../src/config.js';
import { DocumentStore } from '../src/domain/document-store.js';
import { pgVectorAvailability } from '../src/domain/pgvector-index.js';
import { ADMIN_TOKEN, makeApp } from './helpers.js';
import type { BuildOverrides } from '../src/app.js';
import { WorkerEmbedder, type Embedder } from '../src/domain/embedder.js';

/**
 * Re-embedding the corpus with another model through the reembed job, against the real multimodal-worker (a child
 * process serving local-hash-384 and local-use-512: the dimension changes), on a private redis-server and on pgvector.
 * While it runs a loop of searches must all answer, with the old model until the switch and the new one after; writes
 * made meanwhile must survive the switch; cancel and a bad model switch nothing.
 */
const DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const OLD = 'local-hash-384';
const NEW = 'local-use-512';
/** The Redis engine's index and each engine's job queue: one DB per engine, so their jobs never meet. */
const DBS = { redis: 2, pgvector: 4 } as const;
const AUTH_DB = 3;

let server: RedisServer;
let worker: ChildProcess;
let workerUrl = '';
const apps: ServiceApp[] = [];
const schemas: string[] = [];

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function startWorker(port?: number): Promise<void> {
  port ??= await freePort();
  const entry = fileURLToPath(new URL('../../multimodal-worker/dist/server.js', import.meta.url));
  worker = spawn(process.execPath, [entry], {
    env: {
      ...process.env,
      NODE_ENV: 'test',
      PORT: String(port),
      HOST: '127.0.0.1',
      AUTH_MODE: 'off',
      LOG_LEVEL: 'silent',
      REDIS_URL: server.url,
      REDIS_DB_MULTIMODAL_WORKER: '1',
      EMBEDDINGS_LOCAL_MODELS: `${OLD},${NEW}`,
    },
    stdio: 'ignore',
  });
  workerUrl = `http://127.0.0.1:${port}`;
  const until = Date.now() + 30_000;
  for (;;) {
    const ok = await fetch(`${workerUrl}/health`).then((r) => r.ok, () => false);
    if (ok) return;
    if (Date.now() > until) throw new Error('the multimodal-worker did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
}

const withPg = (await pgVectorAvailability(DATABASE_URL)).vector;

type Engine = 'redis' | 'pgvector';

/** Stops the worker (the job's next embeddings call fails as a passing failure) and waits until it has gone. */
async function stopWorker(): Promise<void> {
  const exited = new Promise((r) => worker.once('exit', r));
  worker.kill('SIGTERM');
  await exited;
}

async function proxy(engine: Engine, schema: string, extra: Record<string, string> = {}, overrides: BuildOverrides = {}): Promise<ServiceApp> {
  const app = await makeApp(
    loadConfig({
      NODE_ENV: 'test',
      AUTH_MODE: 'on',
      LOG_LEVEL: 'silent',
      REDIS_URL: server.url,
      REDIS_DB_RETRIEVAL_PROXY: String(DBS[engine]),
      REDIS_DB_AUTH: String(AUTH_DB),
      MULTIMODAL_WORKER_URL: workerUrl,
      RETRIEVAL_EMBEDDINGS_MODEL: OLD,
      CACHE_ADMIN_TOKEN: ADMIN_TOKEN,
      PEER_TIMEOUT_MS: '10000',
      PEER_RETRIES: '1',
      JOBS_CONCURRENCY: '1',
      JOBS_ATTEMPTS: '3',
      JOBS_BACKOFF_MS: '100',
      ...(engine === 'pgvector' ? { RETRIEVAL_INDEX: 'pgvector', DATABASE_URL, RETRIEVAL_PG_SCHEMA: schema } : {}),
      ...extra,
    }),
    overrides,
  );
  apps.push(app);
  return app;
}

const TOPICS = ['refund policy for damaged goods', 'shipping times to europe', 'password reset steps', 'invoice currency rules', 'warranty claims'];
const docOf = (i: number, tag = 'doc') => ({
  id: `${tag}-${i}`,
  title: `${tag} ${i}`,
  text: `Document ${i} explains ${TOPICS[i % TOPICS.length]}. It also covers case number ${i} in detail. `.repeat(4),
  chunkSize: 200,
  chunkOverlap: 20,
});

async function seed(app: ServiceApp, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const res = await app.inject({ method: 'POST', url: '/api/v1/documents', payload: docOf(i), headers: admin });
    expect(res.statusCode, res.body).toBe(201);
  }
}

const indexOf = async (app: ServiceApp) => (await app.inject({ method: 'GET', url: '/api/v1/index', headers: admin })).json();
/** API keys of a user of the default tenant: one with the admin scope (re-embeds need it), one that may only write. */
const keys = { admin: '', writer: '', acme: '' };
let admin: Record<string, string> = {};

async function userKeys(app: ServiceApp): Promise<void> {
  const boot = { authorization: `Bearer ${ADMIN_TOKEN}` };
  const user = await app.inject({
    method: 'POST',
    url: '/api/v1/auth/users',
    headers: boot,
    payload: { username: `ops-${randomBytes(3).toString('hex')}`, password: 'correct horse battery staple', tenant: 'default', role: 'admin' },
  });
  expect(user.statusCode, user.body).toBe(201);
  for (const scope of ['admin', 'write'] as const) {
    const key = await app.inject({ method: 'POST', url: '/api/v1/auth/keys', headers: boot, payload: { name: scope, scopes: [scope], userId: user.json().id } });
    expect(key.statusCode, key.body).toBe(201);
    keys[scope === 'admin' ? 'admin' : 'writer'] = key.json().key as string;
  }
  admin = { authorization: `Bearer ${keys.admin}` };
  // Another tenant, whose documents the re-embed moves too.
  const other = await app.inject({
    method: 'POST',
    url: '/api/v1/auth/users',
    headers: boot,
    payload: { username: `acme-${randomBytes(3).toString('hex')}`, password: 'correct horse battery staple', tenant: 'acme', role: 'write' },
  });
  expect(other.statusCode, other.body).toBe(201);
  const key = await app.inject({ method: 'POST', url: '/api/v1/auth/keys', headers: boot, payload: { name: 'acme', scopes: ['write'], userId: other.json().id } });
  keys.acme = key.json().key as string;
}
const asAcme = () => ({ authorization: `Bearer ${keys.acme}` });
const jobOf = async (app: ServiceApp, id: string) => (await app.inject({ method: 'GET', url: `/api/v1/jobs/${id}`, headers: admin })).json();
/** Re-embeds need the admin scope. */
const startReembed = (app: ServiceApp, payload: object, key?: string) =>
  app.inject({ method: 'POST', url: '/api/v1/jobs/reembed', payload, headers: { ...admin, ...(key ? { 'idempotency-key': key } : {}) } });
const search = (app: ServiceApp, query: string, limit = 5) => app.inject({ method: 'POST', url: '/api/v1/search', payload: { query, limit }, headers: admin });

async function waitJob(app: ServiceApp, id: string, states: string[], timeoutMs = 60_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const job = await jobOf(app, id);
    if (states.includes(job.state)) return jobOf(app, id);
    if (Date.now() > until) throw new Error(`job ${id} still ${job.state}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Probe {
  status: number;
  model: string | null;
  results: number;
  body?: string;
}

/** Searches in a loop (a pause of 20 ms between answers: several per 100 ms) until stopped. */
function searchLoop(apps: ServiceApp[]) {
  const probes: Probe[] = [];
  let running = true;
  const done = (async () => {
    let i = 0;
    while (running) {
      const app = apps[i % apps.length]!;
      const res = await search(app, `${TOPICS[i % TOPICS.length]} ${i % 7}`);
      probes.push({ status: res.statusCode, model: (res.headers['x-embedding-model'] as string | undefined) ?? null, results: res.statusCode === 200 ? res.json().results.length : -1, ...(res.statusCode !== 200 ? { body: res.body } : {}) });
      i++;
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    probes,
    stop: async () => {
      running = false;
      await done;
    },
  };
}

/** Follows the job's progress by polling until it finishes. */
async function progressOf(app: ServiceApp, id: string): Promise<{ seen: number[]; job: Record<string, unknown> & { state: string } }> {
  const seen: number[] = [];
  for (;;) {
    const job = await jobOf(app, id);
    seen.push(job.progress.percentage as number);
    // Read again once finished: a read racing the finish may show the state without the result yet.
    if (['completed', 'failed', 'cancelled'].includes(job.state)) {
      const final = await jobOf(app, id);
      seen.push(final.progress.percentage as number);
      return { seen, job: final };
    }
    await new Promise((r) => setTimeout(r, 30));
  }
}

beforeAll(async () => {
  server = await startRedisServer({ args: ['--maxmemory-policy', 'noeviction'] });
  await startWorker();
}, 60_000);

afterAll(async () => {
  for (const app of apps) await app.close().catch(() => undefined);
  worker?.kill('SIGTERM');
  if (schemas.length && withPg) {
    const c = new pg.Client({ connectionString: DATABASE_URL });
    await c.connect();
    for (const s of schemas) await c.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
    await c.end();
  }
  await server?.stop();
});

const engines: Engine[] = (withPg ? ['redis', 'pgvector'] : ['redis']).filter((e) => !process.env.REEMBED_ENGINE || e === process.env.REEMBED_ENGINE) as Engine[];
if (!withPg) console.warn('reembed: pgvector engine left out (PostgreSQL with the vector extension does not answer)');

describe.each(engines)('re-embed on the %s engine', (engine) => {
  let a: ServiceApp;
  let b: ServiceApp | undefined;
  let schema = '';
  let raw: Redis | undefined;

  beforeAll(async () => {
    schema = `test_${randomBytes(6).toString('hex')}`;
    schemas.push(schema);
    if (engine === 'redis') {
      raw = new Redis(server.url, { db: DBS.redis });
      // Each engine's run starts from an empty private index.
      const keys = await raw.keys('*');
      if (keys.length) await raw.del(...keys);
    }
    a = await proxy(engine, schema);
    if (!keys.admin) await userKeys(a);
    // A second replica: on the Redis engine it holds its own copy of the index, reloaded when the stamp moves.
    b = engine === 'redis' ? await proxy(engine, schema) : undefined;
  }, 60_000);

  afterAll(() => raw?.disconnect());

  it(`moves ${OLD} -> ${NEW} (384 -> 512 dimensions) while searches keep answering, writes made meanwhile kept`, async () => {
    await seed(a, 24);
    for (const i of [0, 1, 2]) {
      const res = await a.inject({ method: 'POST', url: '/api/v1/documents', payload: { ...docOf(i, 'acme'), text: `Acme note ${i} about forklift maintenance schedules. `.repeat(3) }, headers: asAcme() });
      expect(res.statusCode, res.body).toBe(201);
    }
    expect(await indexOf(a)).toMatchObject({ engine, model: OLD, dimensions: 384, documents: 24 });
    const before = await search(a, 'refund policy for damaged goods');
    expect(before.headers['x-embedding-model']).toBe(OLD);

    const loop = searchLoop(b ? [a, b] : [a]);
    const start = await startReembed(a, { model: NEW, batchSize: 2 });
    expect(start.statusCode, start.body).toBe(202);
    const id = start.json().id as string;
    const following = progressOf(a, id);

    // Writes while it runs, once its pass has begun: one new document (not in the pass: it must be caught up), one
    // replaced, one deleted.
    await waitJob(a, id, ['active', 'completed']);
    const until = Date.now() + 30_000;
    while ((await jobOf(a, id)).progress.current === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    const added = await a.inject({ method: 'POST', url: '/api/v1/documents', payload: { ...docOf(100, 'late'), text: 'A late document about quarterly tax filings for freelancers. '.repeat(3) }, headers: admin });
    expect(added.statusCode, added.body).toBe(201);
    const replaced = await a.inject({ method: 'POST', url: '/api/v1/documents', payload: { ...docOf(1), text: 'Document one now explains the loyalty points programme for members. '.repeat(3) }, headers: admin });
    expect(replaced.statusCode).toBe(201);
    expect((await a.inject({ method: 'DELETE', url: '/api/v1/documents/doc-2', headers: admin })).statusCode).toBe(204);
    const duringState = (await jobOf(a, id)).state;

    const { seen, job } = await following;
    await new Promise((r) => setTimeout(r, 150));
    await loop.stop();
    expect(job.state, JSON.stringify(job)).toBe('completed');
    expect(job.result).toMatchObject({ previousModel: OLD, model: NEW, dimensions: 512 });
    expect(duringState).toBe('active');
    expect((job.result as { caughtUp: number }).caughtUp).toBeGreaterThanOrEqual(1);

    // Progress: monotone, ending at 100 %.
    expect(seen.length).toBeGreaterThan(1);
    for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThanOrEqual(seen[i - 1]!);
    expect(seen.at(-1)).toBe(100);

    // Every search answered, with results; the old model until the switch, the new one after, never back.
    const failed = loop.probes.filter((p) => p.status !== 200 || p.results === 0);
    expect(failed, JSON.stringify(failed.slice(0, 3))).toEqual([]);
    expect(loop.probes.length).toBeGreaterThan(10);
    const models = loop.probes.map((p) => p.model);
    const firstNew = models.indexOf(NEW);
    expect(models[0]).toBe(OLD);
    expect(firstNew).toBeGreaterThan(0);
    expect(models.slice(0, firstNew).every((m) => m === OLD)).toBe(true);
    expect(models.slice(firstNew).every((m) => m === NEW)).toBe(true);

    expect(await indexOf(a)).toMatchObject({ engine, model: NEW, dimensions: 512, documents: 24 });
    expect((await indexOf(a)).reembed).toBeUndefined();

    // The writes made while it ran: the added and replaced documents are found with the new model, the deleted one stays gone.
    const late = await search(a, 'quarterly tax filings for freelancers', 3);
    expect(late.headers['x-embedding-model']).toBe(NEW);
    expect(late.json().results[0].documentId).toBe('late-100');
    const loyalty = await search(a, 'loyalty points programme for members', 3);
    expect(loyalty.json().results[0].documentId).toBe('doc-1');
    expect((await a.inject({ method: 'GET', url: '/api/v1/documents/doc-2', headers: admin })).statusCode).toBe(404);
    const all = await search(a, 'Document 2 explains invoice currency rules case number 2', 30);
    expect(all.json().results.map((r: { documentId: string }) => r.documentId)).not.toContain('doc-2');
    const list = (await a.inject({ method: 'GET', url: '/api/v1/documents?limit=100', headers: admin })).json();
    expect(list.documents.map((d: { model: string }) => d.model).every((m: string) => m === NEW)).toBe(true);
    expect((await a.inject({ method: 'GET', url: '/api/v1/documents/late-100', headers: admin })).json().model).toBe(NEW);

    // The other tenant's documents moved too, and it sees only its own.
    const acme = await a.inject({ method: 'POST', url: '/api/v1/search', payload: { query: 'forklift maintenance', limit: 10 }, headers: asAcme() });
    expect(acme.headers['x-embedding-model']).toBe(NEW);
    expect(acme.json().results.map((r: { documentId: string }) => r.documentId).sort()).toEqual(['acme-0', 'acme-1', 'acme-2']);
    expect(await (await a.inject({ method: 'GET', url: '/api/v1/index', headers: asAcme() })).json()).toMatchObject({ model: NEW, dimensions: 512, documents: 3 });
    expect((await a.inject({ method: 'GET', url: '/api/v1/documents/acme-0', headers: asAcme() })).json().model).toBe(NEW);

    // An ingest after the switch embeds with the new model.
    expect((await a.inject({ method: 'POST', url: '/api/v1/documents', payload: docOf(200, 'after'), headers: admin })).statusCode).toBe(201);
    expect((await a.inject({ method: 'GET', url: '/api/v1/documents/after-200', headers: admin })).json().model).toBe(NEW);

    // The second replica answers with the new model too.
    if (b) {
      const other = await search(b, 'quarterly tax filings for freelancers', 3);
      expect(other.statusCode).toBe(200);
      expect(other.headers['x-embedding-model']).toBe(NEW);
      expect(other.json().results[0].documentId).toBe('late-100');
    }

    // Nothing of the old generation or the staging is left.
    if (raw) {
      const fields = await raw.hkeys('state:retrieval-proxy:doc:doc-3');
      expect(fields.filter((f) => f.startsWith('v:'))).toEqual([]);
      expect(fields.some((f) => /^v\d+:0$/.test(f))).toBe(true);
      expect(await raw.exists('state:retrieval-proxy:reembed', 'state:retrieval-proxy:reembed:dirty')).toBe(0);
    } else {
      const c = new pg.Client({ connectionString: DATABASE_URL });
      await c.connect();
      const tables = await c.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1`, [schema]);
      const dims = await c.query(`SELECT vector_dims(embedding) AS d FROM "${schema}".chunks LIMIT 1`);
      const hnsw = await c.query(`SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = 'chunks' AND indexdef ILIKE '%hnsw%'`, [schema]);
      await c.end();
      expect(tables.rows.map((r) => r.table_name)).not.toContain('chunks_next');
      expect(dims.rows[0].d).toBe(512);
      expect(hnsw.rows.map((r) => r.indexname)).toEqual(['chunks_embedding_hnsw']);
    }
    console.info(`[reembed ${engine}] searches during the job: ${loop.probes.length} (0 failed), first with ${NEW}: #${firstNew}; writes made while the job was ${duringState}; caughtUp=${String((job.result as { caughtUp: number }).caughtUp)}`);
  }, 120_000);

  it('a vector write embedded with the old model after the switch is refused by the index', async () => {
    if (engine !== 'redis') {
      // pgvector: the same refusal, seen through its put (the service embeds again with the active model).
      const { PgVectorIndex } = await import('../src/domain/pgvector-index.js');
      const index = new PgVectorIndex({ connectionString: DATABASE_URL, schema, efSearch: 40, timeoutMs: 5000, poolSize: 2 });
      try {
        // Of another dimension too: refused, naming the active model the service embeds again with.
        await expect(index.put('default', staleDoc())).rejects.toMatchObject({ statusCode: 409, active: NEW });
      } finally {
        await index.close();
      }
      return;
    }
    const client = new Redis(server.url, { db: DBS.redis });
    try {
      const store = new DocumentStore(client);
      await expect(store.put('default', staleDoc())).rejects.toMatchObject({ statusCode: 409, active: NEW });
      expect(await client.exists('state:retrieval-proxy:doc:stale-1')).toBe(0);
    } finally {
      client.disconnect();
    }
  });

  it('cancel switches nothing and drops the staging; a second start while one runs is a 409', async () => {
    const start = await startReembed(a, { model: OLD, batchSize: 1 });
    expect(start.statusCode, start.body).toBe(202);
    const id = start.json().id as string;
    const other = await startReembed(a, { model: OLD, batchSize: 3 });
    expect(other.statusCode, other.body).toBe(409);
    expect(other.json().message).toMatch(/already under way/);
    // The same request again answers the same job.
    const again = await startReembed(a, { model: OLD, batchSize: 1 });
    expect(again.json()).toMatchObject({ id, duplicate: true });

    await waitJob(a, id, ['active']);
    const until = Date.now() + 30_000;
    while ((await jobOf(a, id)).progress.current === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect((await indexOf(a)).reembed).toMatchObject({ job: id, model: OLD, dimensions: 384 });
    const cancel = await a.inject({ method: 'DELETE', url: `/api/v1/jobs/${id}`, headers: admin });
    expect([200, 202]).toContain(cancel.statusCode);
    const job = await waitJob(a, id, ['cancelled', 'completed', 'failed']);
    expect(job.state).toBe('cancelled');

    const info = await indexOf(a);
    expect(info).toMatchObject({ model: NEW, dimensions: 512 });
    expect(info.reembed).toBeUndefined();
    const res = await search(a, 'refund policy for damaged goods');
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-embedding-model']).toBe(NEW);
    if (raw) {
      const fields = await raw.hkeys('state:retrieval-proxy:doc:doc-3');
      const generations = new Set(fields.filter((f) => /^v\d*:/.test(f)).map((f) => f.split(':')[0]));
      expect(generations.size).toBe(1);
      expect(fields.filter((f) => /^m\d+$/.test(f)).length).toBeLessThanOrEqual(1);
      expect(await raw.exists('state:retrieval-proxy:reembed', 'state:retrieval-proxy:reembed:dirty')).toBe(0);
    } else {
      const c = new pg.Client({ connectionString: DATABASE_URL });
      await c.connect();
      const next = await c.query(`SELECT to_regclass($1) AS t`, [`"${schema}".chunks_next`]);
      await c.end();
      expect(next.rows[0].t).toBeNull();
    }
  }, 60_000);

  it('an unknown model fails the job at once, without retry, and switches nothing', async () => {
    const start = await startReembed(a, { model: 'no-such-model' });
    expect(start.statusCode, start.body).toBe(202);
    const job = await waitJob(a, start.json().id, ['failed', 'completed', 'cancelled']);
    expect(job.state).toBe('failed');
    expect(job.attempts).toBeLessThanOrEqual(1);
    expect(job.error).toMatch(/no-such-model/);
    // Not tried again: still failed a while later (a retry would wait JOBS_BACKOFF_MS, 100 ms).
    await new Promise((r) => setTimeout(r, 400));
    expect(await jobOf(a, start.json().id)).toMatchObject({ state: 'failed' });
    const info = await indexOf(a);
    expect(info).toMatchObject({ model: NEW, dimensions: 512 });
    expect(info.reembed).toBeUndefined();
  }, 30_000);

  it('needs the admin scope; a bad body is a 400', async () => {
    const writer = await a.inject({ method: 'POST', url: '/api/v1/jobs/reembed', payload: { model: NEW }, headers: { authorization: `Bearer ${keys.writer}` } });
    expect(writer.statusCode, writer.body).toBe(403);
    expect(writer.json().message).toMatch(/needs admin/);
    // Both routes are in the OpenAPI document, the start route marked admin-only.
    const spec = (await a.inject({ method: 'GET', url: '/docs/json' })).json();
    expect(spec.paths['/api/v1/jobs/reembed'].post['x-scope']).toBe('admin');
    expect(spec.paths['/api/v1/index'].get.responses['200']).toBeDefined();
    const res = await startReembed(a, { model: '', batchSize: 0 });
    expect(res.statusCode).toBe(400);
  });

  it('a job whose worker went away is tried again and resumes: documents it staged are not embedded again', async () => {
    // Its own replica, with retries spaced enough for the worker to come back; the first replica runs no job meanwhile.
    await a.close();
    const c = await proxy(engine, schema, { JOBS_ATTEMPTS: '6', JOBS_BACKOFF_MS: '1000', PEER_RETRIES: '0' });
    // The same model again (as after an upgrade of it), with the worker's embeddings cache emptied so the job takes a while.
    const workerCache = new Redis(server.url, { db: 1 });
    const cached = await workerCache.keys('*');
    if (cached.length) await workerCache.del(...cached);
    workerCache.disconnect();
    const port = Number(new URL(workerUrl).port);
    const start = await startReembed(c, { model: NEW, batchSize: 1 });
    expect(start.statusCode, start.body).toBe(202);
    const id = start.json().id as string;
    const until = Date.now() + 30_000;
    while ((await jobOf(c, id)).progress.current < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    await stopWorker();
    await new Promise((r) => setTimeout(r, 300));
    // Failed its try for a passing reason: the staging generation is kept for the next.
    const between = await jobOf(c, id);
    expect(between.state, JSON.stringify(between)).not.toBe('completed');
    expect((await indexOf(c)).reembed).toMatchObject({ job: id, model: NEW });
    await startWorker(port);
    const job = await waitJob(c, id, ['completed', 'failed', 'cancelled'], 60_000);
    expect(job.state, JSON.stringify(job)).toBe('completed');
    const result = job.result as { resumedFrom?: number; staged: number; documents: number; model: string; dimensions: number };
    expect(result).toMatchObject({ previousModel: NEW, model: NEW, dimensions: 512 });
    expect(result.resumedFrom).toBeGreaterThan(0);
    // The try that resumed staged only what the first left: fewer documents than there are.
    expect(result.staged).toBeLessThan(result.documents);
    expect(await indexOf(c)).toMatchObject({ model: NEW, dimensions: 512 });
    const res = await search(c, 'quarterly tax filings for freelancers', 3);
    expect(res.headers['x-embedding-model']).toBe(NEW);
    expect(res.json().results[0].documentId).toBe('late-100');
  }, 90_000);

  it('an ingest embedded with the old model that lands after the switch is embedded again with the new one', async () => {
    // The real worker, with the ingest of one document held after its embeddings came back, until the switch is done.
    const real = new WorkerEmbedder({ baseUrl: workerUrl, timeoutMs: 10_000, retries: 0 });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const askedFor: string[] = [];
    const held: Embedder = {
      async embed(inputs, opts) {
        const out = await real.embed(inputs, opts);
        if (inputs.some((t) => t.includes('HOLD'))) {
          askedFor.push(opts?.model ?? '');
          if (askedFor.length === 1) await gate;
        }
        return out;
      },
      ready: () => real.ready(),
      close: () => real.close(),
    };
    const e = await proxy(engine, schema, {}, { embedder: held });
    const before = (await indexOf(e)).model as string;
    const target = before === NEW ? OLD : NEW;
    const ingest = e.inject({ method: 'POST', url: '/api/v1/documents', payload: { id: 'held-1', title: 'held', text: 'HOLD a note about orbital mechanics of comets.' }, headers: admin });
    const until = Date.now() + 20_000;
    while (askedFor.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    expect(askedFor).toEqual([before]);

    const start = await startReembed(e, { model: target, batchSize: 5 });
    expect(start.statusCode, start.body).toBe(202);
    const job = await waitJob(e, start.json().id, ['completed', 'failed', 'cancelled'], 60_000);
    expect(job.state, JSON.stringify(job)).toBe('completed');
    release();
    const stored = await ingest;
    expect(stored.statusCode, stored.body).toBe(201);
    // Refused for the old model, embedded again with the new one: two embeddings calls for it, the second for the target.
    expect(askedFor).toEqual([before, target]);
    expect((await e.inject({ method: 'GET', url: '/api/v1/documents/held-1', headers: admin })).json().model).toBe(target);
    const found = await search(e, 'orbital mechanics of comets', 3);
    expect(found.headers['x-embedding-model']).toBe(target);
    expect(found.json().results[0].documentId).toBe('held-1');
  }, 90_000);

  it('a passing failure on the last try drops the staging generation and switches nothing', async () => {
    const d = await proxy(engine, schema, { JOBS_ATTEMPTS: '1', PEER_RETRIES: '0' });
    const before = await indexOf(d);
    const target = before.model === NEW ? OLD : NEW;
    const workerCache = new Redis(server.url, { db: 1 });
    const cached = await workerCache.keys('*');
    if (cached.length) await workerCache.del(...cached);
    workerCache.disconnect();
    const port = Number(new URL(workerUrl).port);
    // A key of its own: an earlier job with the same body would answer instead.
    const start = await startReembed(d, { model: target, batchSize: 2 }, `last-try-${randomBytes(4).toString('hex')}`);
    expect(start.statusCode, start.body).toBe(202);
    const id = start.json().id as string;
    const until = Date.now() + 30_000;
    while ((await jobOf(d, id)).progress.current < 1 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    expect(start.json().duplicate).toBe(false);
    await stopWorker();
    try {
      const job = await waitJob(d, id, ['completed', 'failed', 'cancelled'], 30_000);
      expect(job.state, JSON.stringify(job)).toBe('failed');
      const info = await indexOf(d);
      expect(info).toMatchObject({ model: before.model, dimensions: before.dimensions });
      expect(info.reembed).toBeUndefined();
    } finally {
      await startWorker(port);
    }
  }, 60_000);
});

function staleDoc() {
  const vector = new Float32Array(384).fill(0.1);
  return {
    meta: {
      id: 'stale-1',
      title: 'stale',
      metadata: {},
      createdAt: new Date().toISOString(),
      chunkCount: 1,
      contentHash: 'x',
      model: OLD,
      dimensions: 384,
      chunkSize: 800,
      chunkOverlap: 120,
    },
    chunks: [{ text: 'stale text', vector }],
  };
}
