// pnpm --filter @aicache/bench run bench:jobs: bulk ingest through the synchronous route against the background job,
// in one run, side by side. The built services (services/*/dist/server.js) run as production processes (AUTH_MODE=on)
// on one private Redis (noeviction, as jobs need): a multimodal-worker with the local-hash-384 model, so embedding
// is cheap and what is measured is the ingest path (HTTP, chunking, the worker call, the index writes), and a
// retrieval-proxy in front of it.
//
// Each contender ingests the same number of fresh documents (about 1-3 chunks of 800 characters each) into a tenant
// of its own, with texts of its own (so no contender finds its embeddings already cached by another):
//   sync cN  POST /api/v1/documents, one document per request, N requests in flight;
//   job bS   one POST /api/v1/jobs/ingest with every document and batchSize S, followed through its event stream as a
//            client does, timed from the submission to the job's own finish time.
// Every contender's tenant must hold all its documents afterwards. The contenders run in a rotated order each round
// and the table shows, per contender, the median over the rounds and its ratio to the best synchronous row.
//
// BENCH_JOBS_DOCS (default 2000) and BENCH_JOBS_ROUNDS (default 3) tune the run; BENCH_JOBS_ONLY=job (or sync) runs
// only those contenders; BENCH_JOBS_CPU_PROF=<dir> starts the proxy under node --cpu-prof and leaves its profile there.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { readJobEvents } from '@aicache/jobs/client';
import { startRedisServer } from '@aicache/test-redis';
import { apiKeyFor, call, cpuUs, expect, startService } from './service-process.js';
import { fmtMs, fmtNum, spread } from './results.js';
import { median, nowMs, rotation, runBounded } from './stats.js';

const DOCS = Number(process.env.BENCH_JOBS_DOCS ?? 2000);
const ROUNDS = Number(process.env.BENCH_JOBS_ROUNDS ?? 3);
const WARMUP_DOCS = Math.min(DOCS, 200);
const ADMIN_TOKEN = 'bench-jobs-admin-token-0123456789abcdef';

type Contender = { name: string; kind: 'sync'; concurrency: number } | { name: string; kind: 'job'; batchSize: number };
const ALL: Contender[] = [
  { name: 'sync c1', kind: 'sync', concurrency: 1 },
  { name: 'sync c8', kind: 'sync', concurrency: 8 },
  { name: 'sync c32', kind: 'sync', concurrency: 32 },
  { name: 'job b50', kind: 'job', batchSize: 50 },
  { name: 'job b200', kind: 'job', batchSize: 200 },
];
const ONLY = process.env.BENCH_JOBS_ONLY;
const CPU_PROF_DIR = process.env.BENCH_JOBS_CPU_PROF;
const CONTENDERS = ALL.filter((c) => !ONLY || c.kind === ONLY);

interface Sample {
  ms: number;
  docs: number;
  chunks: number;
  /** Proxy + worker CPU per document, µs. */
  cpuUsPerDoc: number;
  /** Jobs only: submission answered (202), and the job's own start-to-finish (from its timestamps). */
  submitMs?: number;
  runMs?: number;
  /** Jobs only: one GET /api/v1/jobs/:id of the finished job, median ms. */
  readMs?: number;
}

const WORDS = (
  'refund shipping order invoice parcel warehouse customer account password billing subscription discount voucher ' +
  'delivery return exchange warranty repair battery screen keyboard charger cable adapter printer router modem ' +
  'storage backup restore archive policy contract payment transfer receipt balance statement currency tax'
).split(' ');

/** A deterministic text of `chars` characters, different for every (seed, i). */
function textOf(seed: string, i: number, chars: number): string {
  let x = (i + 1) * 2654435761;
  for (const c of seed) x = (x ^ c.charCodeAt(0)) * 16777619;
  const out: string[] = [`${seed} document ${i}.`];
  let len = out[0]!.length;
  while (len < chars) {
    x = (x * 1103515245 + 12345) >>> 0;
    const w = WORDS[x % WORDS.length]!;
    out.push(x % 11 === 0 ? `${w}.` : w);
    len += w.length + 1;
  }
  return out.join(' ');
}

/** N documents of 400..2,000 characters: 1 to 3 chunks of the default 800 with 120 overlap. */
function documentsOf(seed: string, n: number): Array<{ id: string; title: string; text: string }> {
  return Array.from({ length: n }, (_, i) => ({ id: `${seed}-${i}`, title: `${seed} ${i}`, text: textOf(seed, i, 400 + ((i * 7919) % 1601)) }));
}

/**
 * Follows a job as a client would (GET /api/v1/jobs/:id/events, Server-Sent Events) and answers the job of its final
 * event (completed, failed or cancelled).
 */
async function follow(url: string, bearer: string): Promise<Record<string, unknown>> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${bearer}` } });
  if (res.status !== 200 || !res.body) throw new Error(`events: ${res.status} ${await res.text()}`);
  for await (const e of readJobEvents<Record<string, unknown>>(res.body)) if (e.event !== 'progress') return e.data;
  throw new Error('the event stream ended without a final event');
}

/** Median time of one GET /api/v1/jobs/:id, ms. */
async function readTime(url: string, bearer: string, reads = 15): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < reads; i++) {
    const t0 = nowMs();
    await expect('job read', call(url, 'GET', undefined, bearer), 200);
    times.push(nowMs() - t0);
  }
  return median(times);
}

const load0 = loadavg();
const redis = await startRedisServer({ args: ['--maxmemory-policy', 'noeviction'] });
const started: ChildProcess[] = [];
try {
  const common = {
    REDIS_URL: redis.url,
    CACHE_ADMIN_TOKEN: ADMIN_TOKEN,
    AUTH_MODE: 'on',
    // Far above what the run sends: every request is counted, none refused.
    AUTH_RATE_LIMIT_PER_MINUTE: '1000000000',
    EMBEDDINGS_LOCAL_MODELS: 'local-hash-384',
  };
  const worker = await startService('multimodal-worker', common, redis.dir);
  started.push(worker.proc);
  const proxy = await startService(
    'retrieval-proxy',
    { ...common, MULTIMODAL_WORKER_URL: worker.url, RETRIEVAL_EMBEDDINGS_MODEL: 'local-hash-384', JOBS_CONCURRENCY: '2' },
    redis.dir,
    CPU_PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${resolve(process.env.INIT_CWD ?? process.cwd(), CPU_PROF_DIR)}`] : [],
  );
  started.push(proxy.proc);
  const cpu = (): number => cpuUs(worker.proc.pid!) + cpuUs(proxy.proc.pid!);

  const samples = new Map<string, Sample[]>(CONTENDERS.map((c) => [c.name, []]));
  const runOnce = async (c: Contender, round: number, n = DOCS): Promise<Sample> => {
    const seed = `${c.name.replace(' ', '')}${round < 0 ? 'w' : `r${round}`}`;
    const tenant = `bench-${seed}`;
    const key = await apiKeyFor(proxy.url, ADMIN_TOKEN, tenant);
    const docs = documentsOf(seed, n);
    const c0 = cpu();
    const t0 = nowMs();
    let chunks = 0;
    let sample: Sample;
    if (c.kind === 'sync') {
      await runBounded(docs.length, c.concurrency, async (i) => {
        const made = await expect(`${c.name} ingest`, call(`${proxy.url}/api/v1/documents`, 'POST', docs[i], key), 201);
        chunks += Number(made.chunkCount);
      });
      const ms = nowMs() - t0;
      sample = { ms, docs: docs.length, chunks, cpuUsPerDoc: (cpu() - c0) / docs.length };
    } else {
      const wall0 = Date.now();
      const accepted = await expect(`${c.name} submit`, call(`${proxy.url}/api/v1/jobs/ingest`, 'POST', { documents: docs, batchSize: c.batchSize }, key), 202);
      const submitMs = nowMs() - t0;
      const id = String(accepted.id);
      const job = await follow(`${proxy.url}/api/v1/jobs/${id}/events`, key);
      if (job.state !== 'completed') throw new Error(`${c.name}: job ${String(job.state)}: ${String(job.error)}`);
      // The stream looks every 250 ms: the job's own finish time (same host, same clock) is the precise end.
      const ms = Date.parse(String(job.finishedAt)) - wall0;
      const result = job.result as { ingested: number; chunks: number; failedCount: number };
      if (result.ingested !== docs.length || result.failedCount !== 0) throw new Error(`${c.name}: job result ${JSON.stringify(result)}`);
      chunks = result.chunks;
      sample = { ms, docs: docs.length, chunks, cpuUsPerDoc: (cpu() - c0) / docs.length, submitMs, runMs: Number(job.durationMs) };
      // What one read of the finished job costs (the stream makes one every 250 ms while a client follows it).
      sample.readMs = await readTime(`${proxy.url}/api/v1/jobs/${id}`, key);
    }
    // Nothing lost: the tenant holds every document.
    const listed = await expect(`${c.name} list`, call(`${proxy.url}/api/v1/documents?limit=1`, 'GET', undefined, key), 200);
    if (listed.total !== docs.length) throw new Error(`${c.name}: ${String(listed.total)} documents stored of ${docs.length}`);
    return sample;
  };

  // Warm-up (JIT, connections, the credential cache), not counted.
  process.stdout.write(`warm-up: ${WARMUP_DOCS} documents per contender\n`);
  for (const c of CONTENDERS) await runOnce(c, -1, WARMUP_DOCS);

  process.stdout.write(`bulk ingest of ${fmtNum(DOCS)} documents per contender, ${ROUNDS} round(s), order rotated each round\n`);
  for (let round = 0; round < ROUNDS; round++) {
    for (const c of rotation(CONTENDERS, round)) {
      const s = await runOnce(c, round);
      samples.get(c.name)!.push(s);
      process.stdout.write(
        `  round ${round + 1}: ${c.name.padEnd(8)} ${fmtMs(s.ms).padStart(8)}  ${fmtNum((s.docs / s.ms) * 1000).padStart(5)} docs/s  ${fmtNum((s.chunks / s.ms) * 1000).padStart(5)} chunks/s` +
          (s.submitMs !== undefined ? `  (202 after ${fmtMs(s.submitMs)}, job ran ${fmtMs(s.runMs!)})` : '') +
          '\n',
      );
    }
  }

  const med = (name: string, f: (s: Sample) => number): number => median(samples.get(name)!.map(f));
  const docsPerS = (s: Sample): number => (s.docs / s.ms) * 1000;
  const syncs = CONTENDERS.filter((c) => c.kind === 'sync');
  // With the jobs only (BENCH_JOBS_ONLY=job) the ratios are to the best of them.
  const bestSync = (syncs.length > 0 ? syncs : CONTENDERS).reduce((a, b) => (med(a.name, docsPerS) >= med(b.name, docsPerS) ? a : b));
  const best = med(bestSync.name, docsPerS);
  const rows = [
    '| route | in flight / batch | documents/s | chunks/s | wall time | vs best sync | proxy+worker CPU per document |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const c of CONTENDERS) {
    const ratio = med(c.name, docsPerS) / best;
    const wall = fmtMs(med(c.name, (s) => s.ms));
    const detail =
      c.kind === 'job'
        ? `${wall} (202 after ${fmtMs(med(c.name, (s) => s.submitMs!))}, job ran ${fmtMs(med(c.name, (s) => s.runMs!))})`
        : wall;
    rows.push(
      `| ${c.kind === 'sync' ? '`POST /api/v1/documents`' : '`POST /api/v1/jobs/ingest`'} | ${c.kind === 'sync' ? `${c.concurrency} ${c.concurrency === 1 ? 'request' : 'requests'}` : `1 job, batchSize ${c.batchSize}`} | ` +
        `${fmtNum(med(c.name, docsPerS))} | ${fmtNum(med(c.name, (s) => (s.chunks / s.ms) * 1000))} | ${detail} | ${c.name === bestSync.name ? `1.00x (best${bestSync.kind === 'sync' ? ' sync' : ''})` : `${ratio.toFixed(2)}x`} | ` +
        `${fmtNum(med(c.name, (s) => s.cpuUsPerDoc))} µs |`,
    );
  }
  // Each round's ratios to that round's best synchronous row: how far the machine moved them between rounds.
  const perRound = CONTENDERS.filter((c) => c.kind === 'job' && syncs.length > 0).map((c) => {
    const ratios = samples.get(c.name)!.map((s, round) => docsPerS(s) / Math.max(...syncs.map((x) => docsPerS(samples.get(x.name)![round]!))));
    return `${c.name}: ${ratios.map((r) => `${r.toFixed(2)}x`).join(', ')}${ratios.length > 1 ? ` (${spread(ratios)})` : ''}`;
  });
  let reads = '';
  const chunksPerDoc = med(CONTENDERS[0]!.name, (s) => s.chunks / s.docs);
  if (perRound.length > 0) reads += `\nper round, to that round's best synchronous row: ${perRound.join('; ')}\n`;
  if (CONTENDERS.some((c) => c.kind === 'job')) {
    // The same read of a job of one document, for scale: a job's record holds the key of its documents, not the
    // documents, so the two should cost alike (a read carried the whole input before they were stored beside it).
    const key = await apiKeyFor(proxy.url, ADMIN_TOKEN, 'bench-tiny');
    const tiny = await expect('tiny submit', call(`${proxy.url}/api/v1/jobs/ingest`, 'POST', { documents: documentsOf('tiny', 1) }, key), 202);
    await follow(`${proxy.url}/api/v1/jobs/${String(tiny.id)}/events`, key);
    const tinyMs = await readTime(`${proxy.url}/api/v1/jobs/${String(tiny.id)}`, key);
    const bigMs = median(CONTENDERS.filter((c) => c.kind === 'job').flatMap((c) => samples.get(c.name)!.map((s) => s.readMs!)));
    reads += `\nGET /api/v1/jobs/:id of a finished job: ${fmtMs(bigMs)} for a job of ${fmtNum(DOCS)} documents, ${fmtMs(tinyMs)} for one of 1 document (${(bigMs / tinyMs).toFixed(0)}x)\n`;
  }
  process.stdout.write(
    `\n${fmtNum(DOCS)} documents (${chunksPerDoc.toFixed(2)} chunks each on average), local-hash-384, medians of ${ROUNDS} round(s):\n\n${rows.join('\n')}\n${reads}`,
  );
} finally {
  for (const p of started) p.kill('SIGTERM');
  await Promise.all(started.map((p) => (p.exitCode === null && p.signalCode === null ? once(p, 'exit') : undefined)));
  await redis.stop();
  const load1 = loadavg();
  process.stdout.write(`load average (1/5/15 min): before ${load0.map((x) => x.toFixed(2)).join(' ')}, after ${load1.map((x) => x.toFixed(2)).join(' ')}\n`);
}
