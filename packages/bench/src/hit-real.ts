// pnpm --filter @aicache/bench run bench:hit-real: the library's CPU per hit from a real Redis, beside a bare client's.
// Unlike bench:hit (a stand-in client answering from memory), every call here goes through a socket to a private
// redis-server, so what only a real connection costs (reply parsing, the socket write, the order replies come in)
// is in the figures. Each op runs in alternating rounds in this one process; figures are CPU µs per call (user +
// system of this process), median of the rounds. Compare them with each other, never with a threshold.
//
// For instruction counts (noise-free on a busy machine), run one op at a time under callgrind, twice with
// different call counts, and divide the difference of the totals by the difference of the calls:
//   BENCH_HIT_ONLY='getOrSet hit' BENCH_HIT_CALLS=20000 valgrind --tool=callgrind node dist/hit-real.js
// (BENCH_HIT_REDIS_URL points at a redis-server of your own; by default one is started on a free port.)
import { Redis } from 'ioredis';
import { Cache, redisOptionsFromEnv } from '@aicache/cache';
import { startRedisServer } from '@aicache/test-redis';
import { makeSearchAnswer } from './payload.js';
import { alternatingCpu, median, runBounded } from './stats.js';

const ROUNDS = Number(process.env.BENCH_HIT_ROUNDS ?? 9);
const CALLS = Number(process.env.BENCH_HIT_CALLS ?? 20_000);
const IN_FLIGHT = Number(process.env.BENCH_HIT_IN_FLIGHT ?? 50);
const ONLY = process.env.BENCH_HIT_ONLY;

/** Tells the driver where the measured calls start or end, and waits until it has acted. */
async function mark(what: 'zero' | 'dump'): Promise<void> {
  if (process.env.BENCH_HIT_MARK !== '1') return;
  const answered = new Promise<void>((resolve) => process.once('SIGUSR2', () => resolve()));
  process.stderr.write(`HIT-REAL ${what} ${process.pid}\n`);
  await answered;
}

const server = process.env.BENCH_HIT_REDIS_URL ? undefined : await startRedisServer({ args: ['--maxmemory', '0'] });
const url = process.env.BENCH_HIT_REDIS_URL ?? server!.url;

const answer = makeSearchAnswer();
const json = Buffer.from(JSON.stringify(answer));
// Built the way a service builds it (REDIS_URL through redisOptionsFromEnv), as rows 1 and 2 do.
const cache = new Cache({
  service: 'hitreal',
  categories: { answers: { ttl: 3600 } },
  env: {},
  connection: redisOptionsFromEnv({ REDIS_URL: url }, 'HIT_DB', 0),
  statsFlushIntervalMs: 3_600_000,
  // Under valgrind every call is ~50x slower: the default 250 ms bound would turn calls into misses.
  ...(process.env.BENCH_HIT_MARK === '1' ? { commandTimeoutMs: 10_000 } : {}),
});
const cat = cache.category('answers');
// The bare client of rows 1a's floor and 2a's raw column: ioredis with its defaults.
const bare = new Redis(url, { maxRetriesPerRequest: 1 });
bare.on('error', () => undefined);
await new Promise<void>((resolve) => (cache.client.status === 'ready' ? resolve() : cache.client.once('ready', () => resolve())));
await bare.ping();

const keys = Array.from({ length: 1000 }, (_, i) => `answer-${i}`);
for (const k of keys) {
  if (!(await cat.set(k, answer))) throw new Error(`set of ${k} failed`);
  await bare.set(`bare:${k}`, json);
}
if (!(await cat.set('bytes', json))) throw new Error('set of bytes failed');
await bare.set('bare:bytes', json);

const neverCalled = (): Promise<never> => Promise.reject(new Error('a loader ran: not every call was a hit'));
const ops: Record<string, (i: number) => Promise<unknown>> = {
  'bare getBuffer (bytes)': () => bare.getBuffer('bare:bytes'),
  'wrapJson hit': () => cat.wrapJson('bytes', neverCalled),
  // The cache's own client, the library left out: what the connection options the cache gives it cost.
  'cache client getBuffer': () => cache.client.getBuffer('bare:bytes'),
  'bare GET + JSON.parse': async (i) => JSON.parse((await bare.get(`bare:${keys[i % keys.length]!}`)) ?? 'null') as unknown,
  'getOrSet hit': (i) => cat.getOrSet(keys[i % keys.length]!, neverCalled),
};
for (const [n, op] of Object.entries(ops)) {
  const got = await op(0);
  const ok = Buffer.isBuffer(got) ? got.equals(json) : JSON.stringify(got) === json.toString();
  if (!ok) throw new Error(`${n} did not answer the stored value`);
}
const names = ONLY ? [ONLY] : Object.keys(ops);
for (const n of names) if (!ops[n]) throw new Error(`no op ${n}; ops: ${Object.keys(ops).join(', ')}`);
// Warm-up (JIT, connection buffers): BENCH_HIT_WARMUP calls of each op, by default a tenth of a round (at least 2000).
const WARMUP = Number(process.env.BENCH_HIT_WARMUP ?? Math.max(2000, CALLS / 10));
for (const n of names) await runBounded(WARMUP, IN_FLIGHT, ops[n]!);

if (ONLY) {
  // One op, once, for an instruction count: nothing but the calls after the warm-up. Under BENCH_HIT_MARK=1 the
  // calls are framed by two marks on stderr, each answered by SIGUSR2 once the driver (hit-instructions.ts) has
  // zeroed, then dumped, callgrind's counters.
  await mark('zero');
  await runBounded(CALLS, IN_FLIGHT, ops[ONLY]!);
  await mark('dump');
} else {
  const { cpu, sys } = await alternatingCpu(ops, ROUNDS, CALLS, IN_FLIGHT);
  const us = (n: string): number => median(cpu[n]!);
  process.stdout.write(
    `CPU per hit from a private redis-server (${ROUNDS} alternating rounds x ${CALLS} calls, ${IN_FLIGHT} in flight, ${json.length} B value):\n` +
      names.map((n) => `  ${n.padEnd(24)} ${us(n).toFixed(2)} µs (system ${median(sys[n]!).toFixed(2)} µs)`).join('\n') +
      `\n  wrapJson over bare getBuffer: ${(us('wrapJson hit') - us('bare getBuffer (bytes)')).toFixed(2)} µs; ` +
      `getOrSet over bare GET + JSON.parse: ${(us('getOrSet hit') - us('bare GET + JSON.parse')).toFixed(2)} µs\n`,
  );
}
if (cache.counters().answers.misses > 0) throw new Error('a call missed');
await cache.close();
bare.disconnect();
await server?.stop();
