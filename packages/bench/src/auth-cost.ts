// pnpm --filter @aicache/bench run bench:auth: what authentication costs a cached search, and how fast a revoked
// key stops working on another replica. The built services (services/*/dist/server.js) run on one private Redis:
//
// 1. Cost. One retrieval-proxy with AUTH_MODE=off (asked without a credential) and one with AUTH_MODE=on (asked with
//    an API key, then with a session token of the same user) answer the same search, checked first to be a cache
//    hit. The request limit is set far above what the load reaches, so every request is counted (and the counts
//    flushed to Redis) but none is refused. A second AUTH_MODE=off process is the control: it does what off does, so
//    its ratio is how far two identical processes differ here. autocannon (its own process) loads off, on-key,
//    on-session and the control in turn, the order rotated each round; each ratio is taken within a round and the
//    median of the rounds is reported. Server CPU per request comes from /proc (Linux), steadier than req/s on a
//    busy machine.
// 2. Revocation across replicas. A second AUTH_MODE=on proxy shares the Redis. For each trial a fresh key is made,
//    used on the second proxy until it is held in that process, then revoked through the first
//    (DELETE /api/v1/auth/keys/:id) while the second is polled with it every POLL_MS; the time to its first 401 is
//    what a revocation takes to reach another replica.
//
// BENCH_AUTH_ROUNDS, BENCH_AUTH_SECONDS, BENCH_AUTH_TRIALS tune the run; BENCH_AUTH_CPU_PROF=<dir> starts the
// off and the on proxy under node --cpu-prof and leaves their profiles in <dir> (written when they exit).
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { Redis } from 'ioredis';
import { startRedisServer } from '@aicache/test-redis';
import { forkChild } from './child.js';
import { call, cpuUs, expect, startService, type Load, type Service } from './service-process.js';
import { fmtMs, fmtNum } from './results.js';
import { max, median, nowMs, rotation, sleep } from './stats.js';

const ROUNDS = Number(process.env.BENCH_AUTH_ROUNDS ?? 8);
const SECONDS = Number(process.env.BENCH_AUTH_SECONDS ?? 3);
const TRIALS = Number(process.env.BENCH_AUTH_TRIALS ?? 20);
const CPU_PROF_DIR = process.env.BENCH_AUTH_CPU_PROF;
const CONNECTIONS = 8;
const POLL_MS = 2;
/** REDIS_DB_AUTH's default: where the services keep users, keys, sessions and the limits' counts. */
const AUTH_DB = 3;
const ADMIN_TOKEN = 'bench-auth-admin-token-0123456789abcdef';
const PASSWORD = 'bench-password-0123456789';

type Sample = Load & { cpuUsPerReq: number; counted: number };




const load0 = loadavg();
const redis = await startRedisServer();
const started: ChildProcess[] = [];
const closers: Array<() => Promise<void>> = [];
const load = forkChild('http-load', {});
try {
  const common = {
    // AUTH_MODE=off is refused in production, so every process of the comparison runs as development (the difference
    // is only the log format on a terminal, and these write to a pipe).
    NODE_ENV: 'development',
    REDIS_URL: redis.url,
    CACHE_ADMIN_TOKEN: ADMIN_TOKEN,
    SERVICE_TOKEN_SECRET: 'bench-auth-service-token-secret-0123456789abcdef',
    EMBEDDINGS_LOCAL_MODELS: 'local-hash-384',
  };
  // One worker serves both proxies; a cached search never reaches it (ingest and the first search do). It runs with
  // AUTH_MODE=off so it answers the off proxy, which sends no credential; a service token from an on proxy is still
  // checked against the shared SERVICE_TOKEN_SECRET.
  const worker = await startService('multimodal-worker', { ...common, AUTH_MODE: 'off' }, redis.dir);
  started.push(worker.proc);
  const proxyOn = { ...common, AUTH_MODE: 'on', MULTIMODAL_WORKER_URL: worker.url, AUTH_RATE_LIMIT_PER_MINUTE: '1000000000' };
  const profArgs = CPU_PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${resolve(process.env.INIT_CWD ?? process.cwd(), CPU_PROF_DIR)}`] : [];
  const off = await startService('retrieval-proxy', { ...common, AUTH_MODE: 'off', MULTIMODAL_WORKER_URL: worker.url }, redis.dir, profArgs);
  started.push(off.proc);
  const control = await startService('retrieval-proxy', { ...common, AUTH_MODE: 'off', MULTIMODAL_WORKER_URL: worker.url }, redis.dir);
  started.push(control.proc);
  const on = await startService('retrieval-proxy', proxyOn, redis.dir, profArgs);
  started.push(on.proc);
  const replica = await startService('retrieval-proxy', proxyOn, redis.dir);
  started.push(replica.proc);
  await load.firstMessage();
  if (CPU_PROF_DIR) process.stdout.write(`CPU profiles in ${CPU_PROF_DIR}: AUTH_MODE=off proxy pid ${off.proc.pid}, AUTH_MODE=on proxy pid ${on.proc.pid}\n`);
  const authDb = new Redis(`${redis.url}/${AUTH_DB}`, { maxRetriesPerRequest: 1 });
  closers.push(async () => void authDb.disconnect());

  // A user and its credentials, made as an operator would: the bootstrap admin token creates them.
  const user = await expect(
    'user create',
    call(`${on.url}/api/v1/auth/users`, 'POST', { username: 'bench', password: PASSWORD, tenant: 'bench', role: 'write' }, ADMIN_TOKEN),
    201,
  );
  const userId = String(user.id);
  const makeKey = async (name: string): Promise<{ key: string; id: string }> => {
    const made = await expect('key create', call(`${on.url}/api/v1/auth/keys`, 'POST', { name, scopes: ['write'], userId }, ADMIN_TOKEN), 201);
    return { key: String(made.key), id: String((made.record as { id: string }).id) };
  };
  const apiKey = (await makeKey('bench-load')).key;
  const session = String((await expect('login', call(`${on.url}/api/v1/auth/login`, 'POST', { username: 'bench', password: PASSWORD }), 200)).token);

  // The document is put in through each proxy with that proxy's credential, so each side searches a corpus it can
  // see, however documents are split by tenant.
  const doc = { id: 'bench-doc', title: 'Sourdough', text: 'A sourdough starter is a culture of wild yeast and lactic acid bacteria that leavens bread dough through fermentation.' };
  await expect('ingest (off)', call(`${off.url}/api/v1/documents`, 'POST', doc), 201);
  await expect('ingest (on)', call(`${on.url}/api/v1/documents`, 'POST', doc, apiKey), 201);
  const query = { query: 'how does a sourdough starter leaven bread', limit: 3 };
  const search = JSON.stringify(query);

  // 'control' is a second AUTH_MODE=off process: how far two processes doing the same work differ on this machine.
  const modes = ['off', 'key', 'session', 'control'] as const;
  type Mode = (typeof modes)[number];
  const targets: Record<Mode, { svc: Service; bearer?: string }> = {
    off: { svc: off },
    key: { svc: on, bearer: apiKey },
    session: { svc: on, bearer: session },
    control: { svc: control },
  };
  const bodies = new Set<number>();
  for (const m of modes) {
    // The first search of each may be a miss; after that every answer must be the cached one.
    const { svc, bearer } = targets[m];
    await call(`${svc.url}/api/v1/search`, 'POST', query, bearer);
    const again = await call(`${svc.url}/api/v1/search`, 'POST', query, bearer);
    if (again.status !== 200 || again.cache !== 'hit') throw new Error(`${m}: search answered ${again.status}, x-cache ${again.cache}`);
    bodies.add(JSON.stringify(again.json).length);
  }
  process.stdout.write(`search answer sizes (JSON characters) across modes: ${[...bodies].join(', ')}\n`);
  // Without a credential the on proxy refuses: the load below is really authenticated.
  await expect('search without a credential (on)', call(`${on.url}/api/v1/search`, 'POST', query), 401);

  // The request-rate counts in the state Redis, per key (one key per credential and minute window).
  const limiterCounts = async (): Promise<Map<string, number>> => {
    const counts = new Map<string, number>();
    for await (const keys of authDb.scanStream({ match: '*rl:req:*', count: 1000 }) as AsyncIterable<string[]>) {
      const values = keys.length ? await authDb.mget(keys) : [];
      keys.forEach((k, i) => counts.set(k, Number(values[i] ?? 0)));
    }
    return counts;
  };
  const served = new Map<Service, number>();
  let missed = 0;
  const commandsPerReq = new Map<Mode, string>();
  // Redis commands the whole private server ran, by command (INFO commandstats): per request, what a search costs Redis.
  const commandCounts = async (): Promise<Map<string, number>> => {
    const info = await authDb.info('commandstats');
    return new Map([...info.matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)].map((x) => [x[1]!, Number(x[2])]));
  };
  const run = async (m: Mode, seconds: number): Promise<Sample> => {
    const { svc, bearer } = targets[m];
    const pid = svc.proc.pid!;
    // With a credential, the limiter's flushes (every 50 ms) must have counted every request of the run into Redis:
    // the counting is part of what is measured. Counts before and after, each once the last flush is in.
    await sleep(150);
    const before = bearer ? await limiterCounts() : new Map<string, number>();
    const k0 = await commandCounts();
    const t0 = Date.now();
    const c0 = cpuUs(pid);
    const res = await load.request<Load>(
      { type: 'load', url: `${svc.url}/api/v1/search`, seconds, connections: CONNECTIONS, jsonBody: search, ...(bearer ? { headers: { authorization: `Bearer ${bearer}` } } : {}) },
      (seconds + 30) * 1000,
    );
    if (res.non2xx || res.errors || res.timeouts) throw new Error(`${m}: ${res.non2xx} non-2xx, ${res.errors} errors, ${res.timeouts} timeouts`);
    const cpuUsPerReq = (cpuUs(pid) - c0) / Math.max(1, res.ok);
    const k1 = await commandCounts();
    const redisPerReq = [...k1].map(([c, n]) => `${c} ${((n - (k0.get(c) ?? 0)) / Math.max(1, res.ok)).toFixed(2)}`).filter((x) => !x.endsWith(' 0.00'));
    commandsPerReq.set(m, redisPerReq.join(', '));
    served.set(svc, (served.get(svc) ?? 0) + res.ok);
    let counted = 0;
    if (bearer) {
      await sleep(150);
      // A window's key only grows, and one that expired during the run was not counted into during it.
      for (const [k, n] of await limiterCounts()) counted += n - (before.get(k) ?? 0);
      // The counts of a minute window not yet flushed when the next window starts are dropped (they can no longer
      // refuse anything), so each window boundary the run crossed may miss up to one flush interval of requests
      // (two allowed here, for a late timer); fewer still would mean the limiter was not counting.
      const boundaries = Math.floor(Date.now() / 60_000) - Math.floor(t0 / 60_000);
      const allowed = Math.ceil(boundaries * res.rps * 0.1) + Math.ceil(res.ok * 0.001);
      if (counted < res.ok - allowed) throw new Error(`${m}: the limiter counted ${counted} requests into Redis for ${res.ok} answered`);
      missed += Math.max(0, res.ok - counted);
    }
    return { ...res, cpuUsPerReq, counted };
  };
  for (const m of modes) await run(m, 2); // warm-up: JIT, connections, the credential cache
  const samples: Record<Mode, Sample[]> = { off: [], key: [], session: [], control: [] };
  process.stdout.write(`cost: ${ROUNDS} rounds x ${SECONDS} s per mode, ${CONNECTIONS} connections; per round, vs off: req/s, p50, p99, CPU/request\n`);
  for (let round = 0; round < ROUNDS; round++) {
    for (const m of rotation(modes, round)) samples[m].push(await run(m, SECONDS));
    const o = samples.off.at(-1)!;
    const rel = (m: Mode): string => {
      const s = samples[m].at(-1)!;
      return `${m} ${fmtNum(s.rps)} req/s (${(s.rps / o.rps).toFixed(2)}x, p50 ${(s.p50 / o.p50).toFixed(2)}x, p99 ${(s.p99 / o.p99).toFixed(2)}x, CPU ${(s.cpuUsPerReq / o.cpuUsPerReq).toFixed(2)}x)`;
    };
    process.stdout.write(`  round ${round + 1}/${ROUNDS}: off ${fmtNum(o.rps)} req/s p50 ${fmtMs(o.p50)} p99 ${fmtMs(o.p99)}; ${rel('key')}; ${rel('session')}; ${rel('control')}\n`);
  }
  const med = (m: Mode, f: (s: Sample) => number): number => median(samples[m].map(f));
  const ratio = (m: Mode, f: (s: Sample) => number): string => median(samples[m].map((s, i) => f(s) / f(samples.off[i]!))).toFixed(2);
  const line = (m: Mode, label: string): string =>
    `  ${label}: ${fmtNum(med(m, (s) => s.rps))} req/s, p50 ${fmtMs(med(m, (s) => s.p50))}, p99 ${fmtMs(med(m, (s) => s.p99))}, ${fmtNum(med(m, (s) => s.cpuUsPerReq), 1)} µs CPU/req` +
    (m === 'off'
      ? '\n'
      : `; vs off ${ratio(m, (s) => s.rps)}x req/s, ${ratio(m, (s) => s.p50)}x p50, ${ratio(m, (s) => s.p99)}x p99, ${ratio(m, (s) => s.cpuUsPerReq)}x CPU/req\n`);
  process.stdout.write(
    `cached search (POST /api/v1/search, x-cache: hit) on retrieval-proxy; medians of ${ROUNDS} rounds, ratios per round:\n` +
      line('off', 'AUTH_MODE=off, no credential') +
      line('key', 'AUTH_MODE=on, API key') +
      line('session', 'AUTH_MODE=on, session token') +
      line('control', 'control: a second AUTH_MODE=off process'),
  );

  const counted = samples.key.concat(samples.session).reduce((n, x) => n + x.counted, 0);
  const answered = samples.key.concat(samples.session).reduce((n, x) => n + x.ok, 0);
  for (const m of modes) process.stdout.write(`  Redis commands per request, ${m} (last round): ${commandsPerReq.get(m)}\n`);
  if (CPU_PROF_DIR) process.stdout.write(`  searches answered under load (for the profiles): off ${served.get(off) ?? 0}, on ${served.get(on) ?? 0}\n`);
  process.stdout.write(`  the limiter counted ${fmtNum(counted)} requests into Redis for the ${fmtNum(answered)} authenticated answers of the rounds (${fmtNum(missed)} short, at minute-window boundaries)\n`);

  // Revocation: the key is used on the replica until that process holds it, then revoked through the other proxy.
  const latencies: number[] = [];
  const afterAnswer: number[] = [];
  const polls: number[] = [];
  for (let t = 0; t < TRIALS; t++) {
    const { key, id } = await makeKey(`bench-revoke-${t}`);
    for (let i = 0; i < 3; i++) await expect('replica before revocation', call(`${replica.url}/api/v1/search`, 'POST', query, key), 200);
    let stop = false;
    let count = 0;
    const poller = (async (): Promise<number> => {
      while (!stop) {
        const r = await call(`${replica.url}/api/v1/search`, 'POST', query, key);
        count++;
        if (r.status === 401) return nowMs();
        if (r.status !== 200) throw new Error(`replica during revocation: ${r.status} ${JSON.stringify(r.json)}`);
        await sleep(POLL_MS);
      }
      return Number.NaN;
    })();
    await sleep(20); // the poller is running
    const t0 = nowMs();
    await expect('key revoke', call(`${on.url}/api/v1/auth/keys/${id}`, 'DELETE', undefined, ADMIN_TOKEN), 204);
    const answered = nowMs();
    const timeout = sleep(15_000).then(() => Number.NaN);
    const refused = await Promise.race([poller, timeout]);
    stop = true;
    if (Number.isNaN(refused)) throw new Error(`trial ${t + 1}: the replica still accepted the revoked key after 15 s`);
    latencies.push(refused - t0);
    afterAnswer.push(refused - answered);
    polls.push(count);
  }
  process.stdout.write(
    `revocation across replicas (${TRIALS} trials, replica polled every ${POLL_MS} ms plus a request, AUTH_CACHE_TTL_MS default 5000):\n` +
      `  DELETE sent -> first 401 on the other replica: median ${fmtMs(median(latencies))}, max ${fmtMs(max(latencies))}` +
      ` (after the DELETE's answer: median ${fmtMs(median(afterAnswer))}, max ${fmtMs(max(afterAnswer))})\n` +
      `  all: ${latencies.map((x) => x.toFixed(1)).join(' ')} ms\n`,
  );
} finally {
  for (const close of closers) await close();
  for (const p of started) p.kill('SIGTERM');
  await Promise.all(started.map((p) => (p.exitCode === null && p.signalCode === null ? once(p, 'exit') : undefined)));
  await load.stop();
  await redis.stop();
  const load1 = loadavg();
  process.stdout.write(`load average (1/5/15 min): before ${load0.map((x) => x.toFixed(2)).join(' ')}, after ${load1.map((x) => x.toFixed(2)).join(' ')}\n`);
}
