/**
 * Failover of the Redis under a real service, on a Redis Cluster (3 masters, 3 replicas, cluster-node-timeout 5000)
 * and on a Sentinel set (primary + replica + 3 Sentinels, down-after 1000 ms), each chosen by env only
 * (REDIS_CLUSTER_NODES, REDIS_SENTINELS). retrieval-proxy over HTTP takes ingests (state writes) and searches
 * (a state read of the corpus stamp and, sent with it, the cache read) from concurrent loops while the master holding its state is
 * killed with SIGKILL. Measured, not asserted (Redis replication is asynchronous): failed requests, the longest
 * request, seconds until writes succeed again, and acknowledged ingests missing afterwards. Asserted: no request
 * hangs, every answer is 2xx or 503 (never 500), a 503 write sent after the kill is never found written (one in
 * flight at the kill can be: the old master may have run it and fed its replica without its reply leaving), and
 * writes resume by themselves.
 * Searches that cannot read the corpus stamp answer from the corpus the replica last knew (x-corpus: last-known).
 * Then a cluster that stays down (the master and its replica killed): the service keeps answering (searches from the
 * last known corpus, 503 for state writes and reads, /health 200) and does not crash.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import { startRedisCluster, startRedisSentinel, type RedisServer } from '@aicache/test-redis';
import { isFailure, Load, now, overlapping, printFigures, recordFigures, round, sleep, type Sample } from '../src/index.js';
import { agentsCfg, buildAgents, buildProxy, Http, listen, proxyCfg, startFakeProxy, until } from './helpers.js';

const DIMS = 32;
/** Concurrent ingest loops and search loops. */
const WRITERS = 4;
const READERS = 8;
/** Load before the kill, and after writes resumed. */
const WARM_MS = 1_500;
const AFTER_MS = 2_000;
/** Hang detector: a failover that has not let writes through by then failed. */
const RESUME_LIMIT_MS = 30_000;

const figures: Record<string, unknown> = {};

/** The multimodal-worker's embeddings API, deterministic and in-process: the Redis under test is the only fault. */
async function startFakeWorker(): Promise<{ url: string; app: FastifyInstance }> {
  const app = Fastify({ logger: false });
  app.get('/health', async () => ({ status: 'ok' }));
  app.post('/api/v1/embeddings', async (request) => {
    const body = request.body as { input: string | string[] };
    const inputs = Array.isArray(body.input) ? body.input : [body.input];
    return {
      object: 'list',
      data: inputs.map((text, index) => {
        const v = Array.from({ length: DIMS }, (_, i) => Math.sin((text.length + 1) * (i + 1) + (text.charCodeAt(i % Math.max(1, text.length)) || 0)));
        return { object: 'embedding', index, embedding: v };
      }),
      model: 'fake',
      usage: { prompt_tokens: inputs.length, total_tokens: inputs.length },
    };
  });
  return { url: await listen(app), app };
}

interface Topology {
  env: Record<string, string>;
  /** The server holding a service's state now. */
  stateMaster(service?: 'retrieval-proxy' | 'ai-agents'): Promise<RedisServer>;
  /** The replicas that could take over from it. */
  standbys(master: RedisServer): Promise<RedisServer[]>;
  stop(): Promise<void>;
}

const topologies: Record<'cluster' | 'sentinel', () => Promise<Topology>> = {
  cluster: async () => {
    const c = await startRedisCluster({ appendfsync: 'everysec', args: ['--maxmemory-policy', 'noeviction'] });
    return {
      env: { REDIS_CLUSTER_NODES: c.nodesEnv },
      stateMaster: (service = 'retrieval-proxy') => c.masterOf(`state:{${service}}:ready`),
      // Without knowing which replica follows which master, every replica: none can take over then.
      standbys: () => c.replicas(),
      stop: () => c.stop(),
    };
  },
  sentinel: async () => {
    const s = await startRedisSentinel({ appendfsync: 'everysec', args: ['--maxmemory-policy', 'noeviction'] });
    return {
      env: { REDIS_SENTINELS: s.sentinelsEnv, REDIS_SENTINEL_NAME: s.name },
      stateMaster: () => s.primary(),
      standbys: async (master) => s.servers.filter((x) => x.port !== master.port),
      stop: () => s.stop(),
    };
  },
};

interface Run {
  topology: Topology;
  app: Awaited<ReturnType<typeof buildProxy>>;
  http: Http;
}

async function start(mode: 'cluster' | 'sentinel', workerUrl: string, env: Record<string, string> = {}): Promise<Run> {
  const topology = await topologies[mode]();
  const app = await buildProxy(proxyCfg({ MULTIMODAL_WORKER_URL: workerUrl, ...topology.env, ...env }), { logger: false, underPressure: false, adminRateLimit: false });
  const http = new Http(await listen(app));
  return { topology, app, http };
}

async function finish(run: Run | undefined): Promise<void> {
  await run?.http.close();
  await run?.app.close();
  await run?.topology.stop();
}

const QUERIES = ['refunds within thirty days', 'international shipping', 'warranty claims', 'password reset', 'invoice address'];

function summary(samples: Sample[], from: number, to: number) {
  const during = overlapping(samples, from, to);
  const statuses: Record<string, number> = {};
  for (const s of samples) statuses[String(s.status)] = (statuses[String(s.status)] ?? 0) + 1;
  return {
    total: samples.length,
    failed: samples.filter(isFailure).length,
    failedDuringFailover: during.filter(isFailure).length,
    statuses,
    longestMs: round(Math.max(0, ...samples.map((s) => s.ms))),
  };
}

async function failover(mode: 'cluster' | 'sentinel', workerUrl: string, waitReplicas = 0) {
  const run = await start(mode, workerUrl, waitReplicas ? { STATE_WAIT_REPLICAS: String(waitReplicas), STATE_WAIT_TIMEOUT_MS: '500' } : {});
  try {
    const { http, topology } = run;
    for (const [i, q] of QUERIES.entries()) {
      const r = await http.call('POST', '/api/v1/documents', { id: `seed-${i}`, title: q, text: `${q}: what the handbook says about ${q}.` });
      expect(r.status, r.text).toBe(201);
    }

    const acked: Array<{ id: string; at: number }> = [];
    const refused: Array<{ id: string; startedAt: number }> = [];
    const writes = new Load({
      concurrency: WRITERS,
      send: async (n) => {
        const id = `w-${n}`;
        const startedAt = now();
        const r = await http.call('POST', '/api/v1/documents', { id, title: id, text: `document ${n} written during a ${mode} failover` });
        if (r.status >= 200 && r.status < 300) acked.push({ id, at: now() });
        else if (r.status === 503) refused.push({ id, startedAt });
        return { status: r.status };
      },
    });
    const reads = new Load({
      concurrency: READERS,
      send: async (n) => {
        const r = await http.call('POST', '/api/v1/search', { query: QUERIES[n % QUERIES.length], limit: 3 });
        return { status: r.status, cache: r.headers['x-cache'] as string | undefined };
      },
    });
    writes.start();
    reads.start();
    await sleep(WARM_MS);

    const master = await topology.stateMaster();
    const tKill = now();
    await master.kill();
    const resumed = await writes.waitFor((s) => s.startedAt > tKill && s.status === 201, RESUME_LIMIT_MS);
    const tResumed = resumed?.endedAt ?? now();
    await sleep(AFTER_MS);
    await Promise.all([writes.stop(), reads.stop()]);

    // Read every acknowledged document back, once the new master answers.
    expect(await until(async () => (await http.call('GET', '/api/v1/documents/seed-0')).status === 200, RESUME_LIMIT_MS)).toBe(true);
    const lost: string[] = [];
    for (const { id } of acked) {
      if ((await http.call('GET', `/api/v1/documents/${id}`)).status !== 200) lost.push(id);
    }
    const refusedButWritten: Array<{ id: string; startedAt: number }> = [];
    for (const w of refused) {
      if ((await http.call('GET', `/api/v1/documents/${w.id}`)).status === 200) refusedButWritten.push(w);
    }

    const fig = {
      mode,
      stateWaitReplicas: waitReplicas,
      acknowledgedWritesPerSecondBeforeKill: round(acked.filter((a) => a.at < tKill).length / (WARM_MS / 1000)),
      killed: `${master.host}:${master.port} (master of the proxy's state)`,
      reads: summary(reads.samples, tKill, tResumed),
      writes: summary(writes.samples, tKill, tResumed),
      secondsUntilWritesSucceedAgain: resumed ? round((resumed.endedAt - tKill) / 1000, 2) : null,
      acknowledgedWrites: acked.length,
      acknowledgedWritesLost: lost.length,
      lostIds: lost.slice(0, 10),
      writesAnswered503: refused.length,
      writesAnswered503ButWritten: refusedButWritten.length,
      writesAnswered503ButWrittenSentBeforeKill: refusedButWritten.filter((w) => w.startedAt < tKill).length,
    };
    figures[waitReplicas ? `${mode}Wait${waitReplicas}` : mode] = fig;
    printFigures(
      `retrieval-proxy failover — ${mode}, kill -9 of the state master under load${waitReplicas ? `, STATE_WAIT_REPLICAS=${waitReplicas}` : ''}`,
      Object.entries(fig),
    );

    expect(resumed, `no ingest succeeded within ${RESUME_LIMIT_MS} ms of the kill`).toBeDefined();
    for (const s of [...reads.samples, ...writes.samples]) {
      expect([200, 201, 503], s.error ?? `status ${s.status}`).toContain(s.status);
    }
    // A write the old master ran (and passed to its replica) just before SIGKILL, whose reply never left, has an
    // unknown outcome: such a 503 can have been written. Every later 503 (a retry after the failover, past its
    // deadline) must not be.
    expect(
      refusedButWritten.filter((w) => w.startedAt >= tKill).map((w) => w.id),
      'an ingest sent after the kill and answered 503 must not be written',
    ).toEqual([]);
    return fig;
  } finally {
    await finish(run);
  }
}

async function staysDown(mode: 'cluster' | 'sentinel', workerUrl: string) {
  const run = await start(mode, workerUrl);
  try {
    const { http, topology } = run;
    const r = await http.call('POST', '/api/v1/documents', { id: 'before', title: 'before', text: 'written before the outage' });
    expect(r.status, r.text).toBe(201);
    const master = await topology.stateMaster();
    for (const standby of await topology.standbys(master)) await standby.kill();
    await master.kill();
    const tDown = now();

    const samples: Array<{ route: string; status: number; ms: number }> = [];
    const timed = async (route: string, call: () => Promise<{ status: number }>) => {
      const t0 = now();
      const res = await call().catch(() => ({ status: 0 }));
      samples.push({ route, status: res.status, ms: now() - t0 });
    };
    while (now() - tDown < 8_000) {
      await Promise.all([
        timed('POST /api/v1/search', () => http.call('POST', '/api/v1/search', { query: 'outage', limit: 3 })),
        timed('POST /api/v1/documents', () => http.call('POST', '/api/v1/documents', { title: 'during', text: 'written during the outage' })),
        timed('GET /health', () => http.call('GET', '/health')),
        timed('GET /api/v1/cache/stats', () => http.call('GET', '/api/v1/cache/stats')),
      ]);
    }
    const ready = await http.call('GET', '/ready');
    const byRoute: Record<string, { statuses: Record<string, number>; longestMs: number | null }> = {};
    for (const s of samples) {
      const entry = (byRoute[s.route] ??= { statuses: {}, longestMs: 0 });
      entry.statuses[String(s.status)] = (entry.statuses[String(s.status)] ?? 0) + 1;
      entry.longestMs = round(Math.max(entry.longestMs ?? 0, s.ms));
    }
    const fig = { mode, readyStatus: ready.status, routes: byRoute };
    figures[`${mode}StaysDown`] = fig;
    printFigures(`retrieval-proxy — ${mode} that stays down (state master and its standbys killed)`, Object.entries(fig));

    expect(ready.status).toBe(503);
    for (const s of samples) {
      if (s.route === 'GET /health') expect(s.status).toBe(200);
      else if (s.route === 'GET /api/v1/cache/stats') expect([200, 503]).toContain(s.status);
      // Searches answer from the corpus this replica last knew (x-corpus: last-known); writes cannot be kept.
      else if (s.route === 'POST /api/v1/search') expect(s.status, s.route).toBe(200);
      else expect(s.status, s.route).toBe(503);
    }
  } finally {
    await finish(run);
  }
}

/**
 * ai-agents messages (each a state write of the user message and its reply, plus memory) under the same kill:
 * acknowledged messages read back from every conversation after the failover.
 */
async function messagesFailover(mode: 'cluster' | 'sentinel') {
  const topology = await topologies[mode]();
  const proxy = await startFakeProxy();
  const app = await buildAgents(agentsCfg({ RETRIEVAL_PROXY_URL: proxy.url, ...topology.env }), { logger: false, underPressure: false });
  const http = new Http(await listen(app));
  try {
    const agent = await http.call('POST', '/api/v1/agents', { name: `failover-${mode}` });
    expect(agent.status, agent.text).toBe(201);
    const conversations: string[] = [];
    for (let i = 0; i < WRITERS; i++) {
      const c = await http.call('POST', `/api/v1/agents/${agent.json<{ id: string }>().id}/conversations`, {});
      expect(c.status, c.text).toBe(201);
      conversations.push(c.json<{ id: string }>().id);
    }
    const acked = new Map<string, string[]>(conversations.map((c) => [c, []]));
    const load = new Load({
      concurrency: WRITERS,
      send: async (n) => {
        const conversation = conversations[n % WRITERS]!;
        const content = `message ${n} during a ${mode} failover`;
        const r = await http.call('POST', `/api/v1/conversations/${conversation}/messages`, { content });
        if (r.status === 201) acked.get(conversation)!.push(content);
        return { status: r.status };
      },
    });
    load.start();
    await sleep(WARM_MS);
    const master = await topology.stateMaster('ai-agents');
    const tKill = now();
    await master.kill();
    const resumed = await load.waitFor((s) => s.startedAt > tKill && s.status === 201, RESUME_LIMIT_MS);
    await sleep(AFTER_MS);
    await load.stop();

    let ackedCount = 0;
    let lost = 0;
    for (const [conversation, contents] of acked) {
      const stored = new Set<string>();
      let before: string | null = null;
      do {
        const page = await http.call('GET', `/api/v1/conversations/${conversation}/messages?limit=200${before ? `&before=${before}` : ''}`);
        expect(page.status, page.text).toBe(200);
        const body = page.json<{ items: Array<{ content: string }>; nextCursor: string | null }>();
        for (const m of body.items) stored.add(m.content);
        before = body.nextCursor;
      } while (before);
      ackedCount += contents.length;
      lost += contents.filter((c) => !stored.has(c)).length;
    }
    const fig = {
      mode,
      killed: `${master.host}:${master.port} (master of ai-agents' state)`,
      messages: summary(load.samples, tKill, resumed?.endedAt ?? now()),
      secondsUntilWritesSucceedAgain: resumed ? round((resumed.endedAt - tKill) / 1000, 2) : null,
      acknowledgedMessages: ackedCount,
      acknowledgedMessagesLost: lost,
    };
    figures[`${mode}Messages`] = fig;
    printFigures(`ai-agents failover — ${mode}, kill -9 of the state master under message load`, Object.entries(fig));
    expect(resumed, `no message succeeded within ${RESUME_LIMIT_MS} ms of the kill`).toBeDefined();
    for (const s of load.samples) expect([201, 503], s.error ?? `status ${s.status}`).toContain(s.status);
  } finally {
    await http.close();
    await app.close();
    await proxy.close();
    await topology.stop();
  }
}

describe.each(['cluster', 'sentinel'] as const)('services on a %s: kill -9 of the state master under load', (mode) => {
  let worker: Awaited<ReturnType<typeof startFakeWorker>>;
  beforeAll(async () => {
    worker = await startFakeWorker();
  });
  afterAll(async () => {
    await worker?.app.close();
    recordFigures('failover', figures);
  });

  it('writes resume by themselves; no hang, no 500; a 503 write is never written; figures printed', () => failover(mode, worker.url), 120_000);

  it('the same with STATE_WAIT_REPLICAS=1 (WAIT 1 500 after each state write)', () => failover(mode, worker.url, 1), 120_000);

  it('ai-agents messages: writes resume by themselves, only 201/503, acknowledged messages lost counted', () => messagesFailover(mode), 120_000);

  it('a Redis that stays down: the service answers (503 for state, /health 200) and does not crash', () => staysDown(mode, worker.url), 120_000);
});
