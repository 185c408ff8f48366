// pnpm --filter @aicache/bench run bench:search-trip: round trips of a cached search (POST /api/v1/search answered
// from the cache), counted by time and by command. Two retrieval-proxy replicas run in this process (app.inject, no
// HTTP) on a private redis-server; each reaches it through TCP proxies that hold every chunk D ms each way (one series
// per D in BENCH_TRIP_DELAYS_MS, default 1,5; BENCH_TRIP_ROUNDS rounds each, default 200), one for
// the state connection and one for the cache connection, so one round trip costs >= 2D. In one run, alternating:
//   - a bare GET through the same delayed link (one round trip: the unit),
//   - a cached search in steady state (the stamp has not moved since this replica last read it),
//   - the first cached search after the other replica moved the stamp (an ingest) and cached the answer at the new
//     stamp: the guess was wrong, so the entry is read again at the stamp read (two round trips).
// Figures are p50 in ms and ratios to the bare GET; compare them with each other, never with a threshold.
import { Redis } from 'ioredis';
import { startDelayProxy, startRedisServer, type DelayProxy } from '@aicache/test-redis';
import { statsKey } from '@aicache/cache';
import { buildApp } from '@aicache/retrieval-proxy/dist/app.js';
import { loadConfig } from '@aicache/retrieval-proxy/dist/config.js';
import type { Embedder } from '@aicache/retrieval-proxy/dist/domain/embedder.js';
import { nowMs, percentile } from './stats.js';

/** Each way on every Redis link, one series per delay (the links are idle while it changes). */
const DELAYS_MS = (process.env.BENCH_TRIP_DELAYS_MS ?? '1,5').split(',').map(Number);
const ROUNDS = Number(process.env.BENCH_TRIP_ROUNDS ?? 200);
const DIMS = 64;

/** Hashed bag of words: deterministic, no worker. */
function embedText(text: string): Float32Array {
  const v = new Float32Array(DIMS);
  for (const word of text.toLowerCase().match(/[a-z0-9]+/g) ?? []) {
    let h = 0x811c9dc5;
    for (let i = 0; i < word.length; i++) h = Math.imul(h ^ word.charCodeAt(i), 0x01000193);
    v[(h >>> 0) % DIMS] = (v[(h >>> 0) % DIMS] ?? 0) + 1;
  }
  return v;
}
const embedder: Embedder = {
  embed: async (inputs) => ({ model: 'bow-64', vectors: inputs.map(embedText) }),
  ready: async () => true,
  close: async () => undefined,
};

const server = await startRedisServer();
const target = { host: '127.0.0.1', port: server.port };
const links: DelayProxy[] = [];
const link = async (): Promise<string> => {
  const l = await startDelayProxy(target, DELAYS_MS[0] ?? 1);
  links.push(l);
  return `redis://${l.host}:${l.port}`;
};

type App = Awaited<ReturnType<typeof buildApp>>;
async function replica(): Promise<App> {
  const config = loadConfig({
    NODE_ENV: 'test',
    AUTH_MODE: 'off',
    LOG_LEVEL: 'silent',
    REDIS_URL: await link(),
    REDIS_STATE_URL: await link(),
    REDIS_DB_RETRIEVAL_PROXY: '1',
    CACHE_ADMIN_TOKEN: 'bench-admin-token',
    JOBS_HOUSEKEEPING_INTERVAL_MS: '0',
  });
  const app = await buildApp(config, { logger: false, adminRateLimit: false, underPressure: false, embedder });
  await app.ready();
  return app;
}

const a = await replica();
const b = await replica();
const bare = new Redis(await link(), { db: 1 });
await bare.set('bench:bare', 'x');

const ingest = async (app: App, i: number) => {
  const res = await app.inject({ method: 'POST', url: '/api/v1/documents', payload: { id: `doc-${i % 20}`, title: `Doc ${i}`, text: `Refunds are paid within ${i} days of the return.` } });
  if (res.statusCode !== 201) throw new Error(`ingest answered ${res.statusCode}: ${res.body}`);
};
const query = { query: 'refund days' };
const search = async (app: App, want: 'hit' | 'miss' | undefined): Promise<number> => {
  const t0 = nowMs();
  const res = await app.inject({ method: 'POST', url: '/api/v1/search', payload: query });
  const ms = nowMs() - t0;
  if (res.statusCode !== 200) throw new Error(`search answered ${res.statusCode}: ${res.body}`);
  if (want && res.headers['x-cache'] !== want) throw new Error(`search answered x-cache ${String(res.headers['x-cache'])}, not ${want}`);
  return ms;
};

/** Commands sent on each of the app's connections, but the stats flush (a script on the stats hash, every second). */
function countCommands(app: App): Record<'cache' | 'state', number> {
  const counts = { cache: 0, state: 0 };
  const conns = (app as unknown as { redis: { cache: Redis; state: Redis } }).redis;
  for (const name of ['cache', 'state'] as const) {
    const client = conns[name];
    const send = client.sendCommand.bind(client);
    client.sendCommand = (cmd, stream) => {
      const flush = (cmd.name === 'evalsha' || cmd.name === 'eval') && cmd.args.some((x) => String(x) === statsKey('retrieval-proxy'));
      if (!flush) counts[name]++;
      return send(cmd, stream);
    };
  }
  return counts;
}

await ingest(a, 0);
await search(a, undefined);
for (let i = 0; i < 20; i++) await search(a, 'hit');

const counts = countCommands(a);
const p50 = (xs: number[]) => percentile(xs, 50);
let round = 0;
for (const delay of DELAYS_MS) {
  for (const l of links) l.delayMs = delay;
  const samples = { bare: [] as number[], steady: [] as number[], moved: [] as number[] };
  const perSearch = { steady: { cache: 0, state: 0 }, moved: { cache: 0, state: 0 } };
  for (let i = 0; i < ROUNDS; i++) {
    round++;
    // B moves the stamp and caches the answer at the new one; A still guesses the old one.
    await ingest(b, round);
    await search(b, 'miss');
    const c0 = { ...counts };
    samples.moved.push(await search(a, 'hit'));
    perSearch.moved.cache += counts.cache - c0.cache;
    perSearch.moved.state += counts.state - c0.state;
    const c1 = { ...counts };
    samples.steady.push(await search(a, 'hit'));
    perSearch.steady.cache += counts.cache - c1.cache;
    perSearch.steady.state += counts.state - c1.state;
    const t0 = nowMs();
    await bare.getBuffer('bench:bare');
    samples.bare.push(nowMs() - t0);
  }
  const unit = p50(samples.bare);
  const line = (name: string, xs: number[], cmds?: { cache: number; state: number }) =>
    `  ${name.padEnd(52)} p50 ${p50(xs).toFixed(2).padStart(6)} ms  p90 ${percentile(xs, 90).toFixed(2).padStart(6)} ms  ratio ${(p50(xs) / unit).toFixed(2)}` +
    (cmds ? `  commands/search: cache ${(cmds.cache / ROUNDS).toFixed(2)}, state ${(cmds.state / ROUNDS).toFixed(2)}` : '');
  process.stdout.write(
    `cached search round trips (${delay} ms each way on every Redis link, ${ROUNDS} alternating rounds, in-process app.inject):\n` +
      [
        line('bare GET through the delayed link (1 trip)', samples.bare),
        line('cached search, steady state', samples.steady, perSearch.steady),
        line('cached search, first after another replica wrote', samples.moved, perSearch.moved),
      ].join('\n') +
      '\n',
  );
}

for (const app of [a, b]) await app.close();
bare.disconnect();
for (const l of links) await l.close();
await server.stop();
