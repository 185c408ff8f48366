// pnpm --filter @aicache/bench run bench:tracing: what tracing costs a cached search. Two retrieval-proxy
// processes (the built dist/server.js) share one worker and one private Redis; one exports every span
// (OTEL_TRACES_SAMPLER=always_on) over OTLP to a sink in this process, the other has no endpoint set, so
// it loads no OpenTelemetry at all. autocannon (its own process) posts the same search, a cache hit, to
// each in alternating rounds; the ratio is the median of the per-round ratios. Server CPU per request
// comes from /proc (Linux), steadier than req/s on a busy machine.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startRedisServer } from '@aicache/test-redis';
import { forkChild } from './child.js';
import { apiKeyFor, cpuUs, startService, type Load } from './service-process.js';
import { fmtMs, fmtNum } from './results.js';
import { median, rotation, sleep } from './stats.js';

const ROUNDS = Number(process.env.BENCH_TRACING_ROUNDS ?? 8);
const SECONDS = Number(process.env.BENCH_TRACING_SECONDS ?? 3);
const CONNECTIONS = 8;



// The OTLP sink: takes export requests and counts them; what it costs is this process's, not the proxy's.
let exports = 0;
let exportedBytes = 0;
const sink = createServer((req, res) => {
  req.on('data', (c: Buffer) => (exportedBytes += c.length));
  req.on('end', () => {
    exports++;
    res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
  });
});
sink.listen(0, '127.0.0.1');
await once(sink, 'listening');
const endpoint = `http://127.0.0.1:${(sink.address() as AddressInfo).port}`;

const redis = await startRedisServer();
const started: ChildProcess[] = [];
const load = forkChild('http-load', {});
try {
  const adminToken = 'bench-tracing-token-0123456789abcdef';
  const common = { REDIS_URL: redis.url, CACHE_ADMIN_TOKEN: adminToken };
  const worker = await startService('multimodal-worker', common, redis.dir);
  started.push(worker.proc);
  const proxyEnv = { ...common, MULTIMODAL_WORKER_URL: worker.url };
  const off = await startService('retrieval-proxy', proxyEnv, redis.dir);
  started.push(off.proc);
  const traced = (sampler: Record<string, string>): Record<string, string> => ({
    ...proxyEnv,
    OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
    OTEL_NODE_DISABLED_INSTRUMENTATIONS: process.env.OTEL_NODE_DISABLED_INSTRUMENTATIONS ?? '',
    ...sampler,
  });
  const on = await startService('retrieval-proxy', traced({ OTEL_TRACES_SAMPLER: 'always_on' }), redis.dir);
  started.push(on.proc);
  const tenth = await startService('retrieval-proxy', traced({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1' }), redis.dir);
  started.push(tenth.proc);
  await load.firstMessage();
  // Authentication is on (production) in every mode: one API key, the same for all.
  const auth = { authorization: `Bearer ${await apiKeyFor(off.url, adminToken, 'bench')}` };

  const doc = { id: 'bench-doc', title: 'Sourdough', text: 'A sourdough starter is a culture of wild yeast and lactic acid bacteria that leavens bread dough through fermentation.' };
  const ingest = await fetch(`${off.url}/api/v1/documents`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: JSON.stringify(doc) });
  if (ingest.status !== 201) throw new Error(`ingest: ${ingest.status} ${await ingest.text()}`);
  const search = JSON.stringify({ query: 'how does a sourdough starter leaven bread', limit: 3 });
  const targets = { off, on, tenth };
  type Mode = keyof typeof targets;
  const modes: Mode[] = ['off', 'on', 'tenth'];
  for (const m of modes) {
    // The first search of each proxy may be a miss; after that every answer must be the cached one.
    await fetch(`${targets[m].url}/api/v1/search`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: search });
    const again = await fetch(`${targets[m].url}/api/v1/search`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: search });
    if (again.status !== 200 || again.headers.get('x-cache') !== 'hit') throw new Error(`${m}: search answered ${again.status}, x-cache ${again.headers.get('x-cache')}`);
  }

  const run = async (m: Mode, seconds: number): Promise<Load & { cpuUsPerReq: number }> => {
    const pid = targets[m].proc.pid!;
    const c0 = cpuUs(pid);
    const res = await load.request<Load>({ type: 'load', url: `${targets[m].url}/api/v1/search`, seconds, connections: CONNECTIONS, jsonBody: search, headers: auth }, (seconds + 30) * 1000);
    if (res.non2xx || res.errors || res.timeouts) throw new Error(`${m}: ${res.non2xx} non-2xx, ${res.errors} errors, ${res.timeouts} timeouts`);
    return { ...res, cpuUsPerReq: (cpuUs(pid) - c0) / Math.max(1, res.ok) };
  };
  for (const m of modes) await run(m, 2);
  const exportsBefore = exports;
  const samples: Record<Mode, Array<Load & { cpuUsPerReq: number }>> = { off: [], on: [], tenth: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const m of rotation(modes, round)) samples[m].push(await run(m, SECONDS));
    process.stdout.write(`  round ${round + 1}/${ROUNDS}: ` + modes.map((m) => `${m} ${fmtNum(samples[m].at(-1)!.rps)} req/s`).join(', ') + '\n');
  }
  await sleep(1500); // the last batch of spans
  const med = (m: Mode, f: (l: Load & { cpuUsPerReq: number }) => number): number => median(samples[m].map(f));
  const ratio = (m: Mode): string => median(samples[m].map((s, i) => s.rps / samples.off[i]!.rps)).toFixed(2);
  const cpuRatio = (m: Mode): string => median(samples[m].map((s, i) => s.cpuUsPerReq / samples.off[i]!.cpuUsPerReq)).toFixed(2);
  const line = (m: Mode, label: string): string =>
    `  ${label}: ${fmtNum(med(m, (s) => s.rps))} req/s, p99 ${fmtMs(med(m, (s) => s.p99))}, ${fmtNum(med(m, (s) => s.cpuUsPerReq), 1)} µs CPU/req` +
    (m === 'off' ? '\n' : `; vs off ${ratio(m)}x req/s, ${cpuRatio(m)}x CPU per request\n`);
  process.stdout.write(
    `cached search (POST /api/v1/search, x-cache: hit) on retrieval-proxy, ${ROUNDS} alternating rounds x ${SECONDS} s, ${CONNECTIONS} connections; medians, ratios per round:\n` +
      line('off', 'tracing off (no endpoint)') +
      line('on', 'tracing on, always_on (100 %)') +
      line('tenth', 'tracing on, parentbased_traceidratio 0.1') +
      `  ${exports - exportsBefore} OTLP exports (http/protobuf), ${fmtNum(exportedBytes / 1024)} KiB in all\n`,
  );
} finally {
  for (const p of started) p.kill('SIGTERM');
  await Promise.all(started.map((p) => (p.exitCode === null ? once(p, 'exit') : undefined)));
  await load.stop();
  await redis.stop();
  sink.close();
}
