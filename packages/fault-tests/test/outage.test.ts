/**
 * Cache Redis outages under a steady load: kill -9 then restart, SIGSTOP longer than the command timeout,
 * and a service started while its cache Redis is down. Read routes must answer 2xx throughout (from origin
 * while Redis is away), /ready must say degraded during the outage and ready after, and the service must use
 * Redis again once it is back. Durations are measured and reported, never asserted (bounds here are hang
 * detectors only).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import type { Cache } from '@aicache/cache';
import { countKeys, type RedisServer } from '@aicache/test-redis';
import { Load, isFailure, now, overlapping, percentile, printFigures, recordFigures, round, sleep, type Outcome, type Sample } from '../src/index.js';
import { buildProxy, buildWorker, COMMAND_TIMEOUT_MS, Http, listen, proxyCfg, Servers, until, workerCfg } from './helpers.js';

const CONCURRENCY = 20;
/** Hang detector for "uses Redis again" and "ready again": generous, the real figure is reported. */
const HANG_MS = 15_000;
const KILL_DOWN_MS = 2_000;
const PAUSE_MS = 3_000;

type Kind = 'kill' | 'pause' | 'downAtBoot';

interface Target {
  name: 'multimodal-worker' | 'retrieval-proxy';
  route: string;
  /** SCAN pattern and DB of the entries the route writes, to see them come back after a restart. */
  keyMatch: string;
  db: number;
  build(cache: RedisServer): Promise<FastifyInstance>;
  send(http: Http, n: number): Promise<Outcome>;
}

const servers = new Servers();
const figures: Record<string, Record<string, unknown>> = {};

const INPUTS = Array.from({ length: 12 }, (_, i) => `fault test input ${i}: the quick brown fox jumps over the lazy dog ${i * 7}`);
const QUERIES = [
  'how does redis persist data',
  'what happens when memory is full',
  'append only file fsync policy',
  'cache invalidation by tags',
  'circuit breaker for a slow server',
  'time to live of cached entries',
  'eviction of least recently used keys',
  'snapshots taken at intervals',
  'replaying writes after a restart',
  'why a cache may lose anything',
  'agents keep memory as state',
  'retrieval of context for a question',
];
const DOCS = [
  ['persistence', 'Redis offers two persistence options. The append only file logs every write the server receives; appendfsync decides how often it is flushed. RDB snapshots are taken at intervals. After a restart Redis replays the AOF.'],
  ['eviction', 'When memory is full, allkeys-lru evicts the least recently used keys, while noeviction answers errors to writes. A cache may lose anything; state may not, so state lives on a Redis that never evicts.'],
  ['resilience', 'A circuit breaker stops calling a slow or dead server for a while; a command timeout bounds every call. A cache miss is always an acceptable answer, so the service answers from origin.'],
  ['invalidation', 'Entries can be invalidated by key, by pattern or by tags. Time to live bounds how long cached entries are served. Agents keep their memory as state, and retrieval builds the context for a question.'],
] as const;

const outcome = (r: { status: number; headers: Record<string, string | string[] | undefined> }): Outcome => ({
  status: r.status,
  cache: typeof r.headers['x-cache'] === 'string' ? r.headers['x-cache'] : undefined,
});

async function readyStatus(http: Http): Promise<{ http: number; status: string; redis: unknown }> {
  const r = await http.call('GET', '/ready');
  const body = r.json<{ status: string; checks: Record<string, unknown> }>();
  return { http: r.status, status: body.status, redis: body.checks.redis };
}

/** Cache hits the library has counted in this process: reads answered by Redis, nothing else. */
function libraryHits(app: FastifyInstance): number {
  const counters = (app as unknown as { cache: Cache }).cache.counters() as Record<string, { hits: number }>;
  return Object.values(counters).reduce((n, c) => n + c.hits, 0);
}

/** ms from `from` until the library counts a cache hit again (a read served by Redis). */
async function firstLibraryHitAfter(app: FastifyInstance, from: number): Promise<number | null> {
  const start = libraryHits(app);
  const seen = await until(() => libraryHits(app) > start, HANG_MS, 10);
  return seen ? now() - from : null;
}

/** Polls the broken-and-back Redis until an entry of the route shows up; ms since `from`. */
async function firstKeyAfter(server: RedisServer, t: Target, from: number): Promise<number | null> {
  const client = new Redis({ host: server.host, port: server.port, db: t.db, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => 50, enableOfflineQueue: false });
  client.on('error', () => undefined);
  try {
    const seen = await until(async () => {
      if (client.status !== 'ready') await client.connect().catch(() => undefined);
      return (await countKeys(client, t.keyMatch)) > 0;
    }, HANG_MS, 25);
    return seen ? now() - from : null;
  } finally {
    client.disconnect();
  }
}

function summarize(
  kind: Kind,
  samples: Sample[],
  tFault: number,
  tBack: number,
  reuse: { hit: Sample | undefined; libraryHitMs: number | null; firstKeyMs: number | null },
  extra: Record<string, unknown>,
) {
  const before = samples.filter((s) => s.endedAt < tFault);
  const during = overlapping(samples, tFault, tBack);
  const failures = samples.filter(isFailure);
  // Requests wholly inside the outage (after the first command timeouts): none of them can have read Redis.
  const inside = samples.filter((s) => s.startedAt > tFault + COMMAND_TIMEOUT_MS + 100 && s.endedAt < tBack);
  const longest = [...during].sort((a, b) => b.ms - a.ms).slice(0, 3);
  return {
    scenario: kind,
    concurrency: CONCURRENCY,
    commandTimeoutMs: COMMAND_TIMEOUT_MS,
    requests: samples.length,
    failedRequests: failures.length,
    outageSeconds: round((tBack - tFault) / 1000, 2),
    requestsDuringOutage: during.length,
    longestRequestDuringOutageMs: round(Math.max(0, ...during.map((s) => s.ms))),
    p99DuringOutageMs: round(percentile(during.map((s) => s.ms), 99)),
    baselineP50Ms: round(percentile(before.map((s) => s.ms), 50)),
    baselineMaxMs: before.length ? round(Math.max(...before.map((s) => s.ms))) : null,
    baselineMissP50Ms: round(percentile(before.filter((s) => s.cache === 'miss').map((s) => s.ms), 50)),
    secondsToReuseRedis: reuse.libraryHitMs === null ? null : round(reuse.libraryHitMs / 1000, 2),
    secondsToFirstKeyWritten: reuse.firstKeyMs === null ? null : round(reuse.firstKeyMs / 1000, 2),
    secondsToFirstXCacheHit: reuse.hit ? round((reuse.hit.endedAt - tBack) / 1000, 2) : null,
    xCacheHitsWhileRedisAway: inside.filter((s) => s.cache === 'hit').length,
    requestsWhileRedisAway: inside.length,
    longestDuringOutage: longest.map((s) => ({ ms: round(s.ms), startedMsAfterFault: round(s.startedAt - tFault), cache: s.cache })),
    longestRequestOverallMs: round(Math.max(0, ...samples.map((s) => s.ms))),
    ...extra,
    firstFailures: failures.slice(0, 5).map((s) => ({ status: s.status, error: s.error })),
  };
}

async function scenario(t: Target, kind: Kind) {
  const cache = await servers.start();
  let app: FastifyInstance | undefined;
  let http: Http | undefined;
  let load: Load | undefined;
  try {
    let tFault: number;
    let buildMs: number | null = null;
    if (kind === 'downAtBoot') {
      await cache.kill();
      tFault = now();
      app = await t.build(cache);
      buildMs = now() - tFault;
    } else {
      app = await t.build(cache);
      tFault = 0;
    }
    const url = await listen(app);
    http = new Http(url);
    const h = http;
    load = new Load({ concurrency: CONCURRENCY, send: (n) => t.send(h, n) }).start();

    if (kind !== 'downAtBoot') {
      // Warm: the route answers from the cache before anything breaks.
      expect(await until(() => libraryHits(app!) > 0, HANG_MS, 10), 'no cache hit before the fault').toBe(true);
      await sleep(500);
      tFault = now();
      if (kind === 'kill') await cache.kill();
      else cache.pause();
    }

    const downFor = kind === 'pause' ? PAUSE_MS : KILL_DOWN_MS;
    await sleep(downFor / 2);
    const during = await readyStatus(http);
    await sleep(Math.max(0, downFor - (now() - tFault)));

    if (kind === 'pause') cache.resume();
    else await cache.restart();
    const tBack = now();

    const [hit, libraryHitMs, firstKeyMs] = await Promise.all([
      load.waitFor((s) => s.startedAt >= tBack && s.cache === 'hit', HANG_MS),
      firstLibraryHitAfter(app, tBack),
      kind === 'pause' ? Promise.resolve(null) : firstKeyAfter(cache, t, tBack),
    ]);
    await sleep(300);
    await load.stop();

    let after: Awaited<ReturnType<typeof readyStatus>> | undefined;
    const tReady = now();
    const readyAgain = await until(async () => (after = await readyStatus(h)).status === 'ready', HANG_MS, 100);

    const fig = summarize(kind, load.samples, tFault, tBack, { hit, libraryHitMs, firstKeyMs }, {
      bootWithRedisDownMs: buildMs === null ? undefined : round(buildMs),
      readyDuringOutage: during.status,
      secondsToReadyAfterLoadStopped: readyAgain ? round((now() - tReady) / 1000, 2) : null,
    });
    (figures[t.name] ??= {})[kind] = fig;
    printFigures(`${t.name} — ${kind}`, Object.entries(fig));

    expect(fig.failedRequests, `non-2xx or failed requests: ${JSON.stringify(fig.firstFailures)}`).toBe(0);
    expect(during.http).toBe(200);
    expect(during.status).toBe('degraded');
    expect(libraryHitMs, `${t.name} did not read from Redis within ${HANG_MS} ms of it coming back`).not.toBeNull();
    expect(hit, `${t.name} did not answer x-cache: hit within ${HANG_MS} ms of Redis coming back`).toBeDefined();
    if (kind !== 'pause') expect(firstKeyMs, 'no entry written to the restarted Redis').not.toBeNull();
    expect(readyAgain, `/ready did not come back to ready: ${JSON.stringify(after)}`).toBe(true);
  } finally {
    await load?.stop();
    await http?.close();
    await app?.close();
    await cache.stop();
  }
}

afterAll(async () => {
  await servers.stopAll();
  if (Object.keys(figures).length) recordFigures('outage', figures);
});

describe('multimodal-worker: POST /api/v1/embeddings under a cache Redis outage', () => {
  const worker: Target = {
    name: 'multimodal-worker',
    route: 'POST /api/v1/embeddings',
    keyMatch: 'multimodal-worker:embeddings:*',
    db: 0,
    build: (cache) => buildWorker(workerCfg({ REDIS_URL: cache.url }), { logger: false, underPressure: false, adminRateLimit: false }),
    send: async (http, n) => outcome(await http.call('POST', '/api/v1/embeddings', { input: INPUTS[n % INPUTS.length] })),
  };

  it('kill -9 mid-load, restart after ~2 s: no failed request, degraded then ready, Redis used again', () => scenario(worker, 'kill'));
  it('SIGSTOP for 3 s (> command timeout), then SIGCONT: no failed request, degraded then ready, Redis used again', () => scenario(worker, 'pause'));
  it('booted while Redis is down, Redis started later: serves from the start, then uses Redis', () => scenario(worker, 'downAtBoot'));
});

describe('retrieval-proxy: POST /api/v1/search under a cache Redis outage (state Redis and worker stay up)', () => {
  let state: RedisServer;
  let workerApp: FastifyInstance;
  let workerUrl: string;

  beforeAll(async () => {
    state = await servers.start();
    // The worker caches on the state server (DB 0): only the proxy's cache Redis breaks.
    workerApp = await buildWorker(workerCfg({ REDIS_URL: state.url }), { logger: false, underPressure: false, adminRateLimit: false });
    workerUrl = await listen(workerApp);
    const seeder = await buildProxy(proxyCfg({ REDIS_URL: state.url, REDIS_STATE_URL: state.url, MULTIMODAL_WORKER_URL: workerUrl }), {
      logger: false,
      underPressure: false,
      adminRateLimit: false,
    });
    for (const [id, text] of DOCS) {
      const r = await seeder.inject({ method: 'POST', url: '/api/v1/documents', payload: { id, title: id, text } });
      expect(r.statusCode, r.body).toBe(201);
    }
    await seeder.close();
  });

  afterAll(async () => {
    await workerApp?.close();
  });

  const proxy = (): Target => ({
    name: 'retrieval-proxy',
    route: 'POST /api/v1/search',
    keyMatch: 'retrieval-proxy:search_results:*',
    db: 1,
    build: (cache) =>
      buildProxy(proxyCfg({ REDIS_URL: cache.url, REDIS_STATE_URL: state.url, MULTIMODAL_WORKER_URL: workerUrl }), {
        logger: false,
        underPressure: false,
        adminRateLimit: false,
      }),
    send: async (http, n) => outcome(await http.call('POST', '/api/v1/search', { query: QUERIES[n % QUERIES.length], limit: 5 })),
  });

  it('kill -9 mid-load, restart after ~2 s: no failed request, degraded then ready, Redis used again', () => scenario(proxy(), 'kill'));
  it('SIGSTOP for 3 s (> command timeout), then SIGCONT: no failed request, degraded then ready, Redis used again', () => scenario(proxy(), 'pause'));
  it('booted while Redis is down, Redis started later: serves from the start, then uses Redis', () => scenario(proxy(), 'downAtBoot'));

  // Finding F2 in /tmp/fault-findings.md: concurrent identical requests share one loader (single flight), and the
  // followers are labelled x-cache: hit although no cache answered them.
  it('x-cache is never "hit" while the cache Redis is down (concurrent identical searches)', async () => {
    const cache = await servers.start();
    await cache.kill();
    const app = await proxy().build(cache);
    try {
      const labels: string[] = [];
      for (let round = 0; round < 3; round++) {
        const answers = await Promise.all(
          Array.from({ length: 10 }, () => app.inject({ method: 'POST', url: '/api/v1/search', payload: { query: `single flight ${round}` } })),
        );
        for (const a of answers) {
          expect(a.statusCode, a.body).toBe(200);
          labels.push(String(a.headers['x-cache']));
        }
      }
      const hits = labels.filter((l) => l === 'hit').length;
      expect(hits, `${hits} of ${labels.length} answers said x-cache: hit while the cache Redis was down`).toBe(0);
    } finally {
      await app.close();
      await cache.stop();
    }
  });
});
