// pnpm --filter @aicache/bench run bench:hit: the library's own CPU per hit, beside the bare client's.
// The cache runs on a stand-in client whose GET answers at once from memory, so what is measured is the library's
// JavaScript alone (key, single-flight check, bounded call, decode, counters), not sockets or Redis, which on a
// busy machine move by more than the library costs. Figures are CPU µs per call (user + system of this process),
// median of alternating rounds; compare them with each other, never with a threshold.
import type { Command, Redis } from 'ioredis';
import { Cache, encode } from '@aicache/cache';
import { makeSearchAnswer } from './payload.js';
import { alternatingCpu, median, runBounded } from './stats.js';

const ROUNDS = Number(process.env.BENCH_HIT_ROUNDS ?? 7);
const CALLS = 100_000;
const IN_FLIGHT = 50;

const answer = makeSearchAnswer();
const json = Buffer.from(JSON.stringify(answer));
const store = new Map<string, Buffer>();
/** Only what Cache and its runner touch on a GET hit. */
const standIn = {
  status: 'ready',
  options: { db: 0 },
  on: () => standIn,
  off: () => standIn,
  once: () => standIn,
  time: () => Promise.resolve(['0', '0']),
  getBuffer: (k: string) => Promise.resolve(store.get(k) ?? null),
  // The runner's GET hands its own command to the client (RedisRunner.sendGet): answered at once, as getBuffer is.
  sendCommand: (cmd: Command) => {
    cmd.resolve(store.get(String(cmd.args[0])) ?? null);
    return cmd.promise;
  },
  get: (k: string) => Promise.resolve(store.get(k)?.toString() ?? null),
};
const client = standIn as unknown as Redis;

const cache = new Cache({ service: 'hit', categories: { answers: { ttl: 3600 } }, env: {}, client, statsFlushIntervalMs: 3_600_000 });
const cat = cache.category('answers');
const keys = Array.from({ length: 1000 }, (_, i) => `answer-${i}`);
for (const k of keys) store.set(cat.key(k), encode(answer));
store.set(cat.key('bytes'), encode(json));
store.set('bare:bytes', json);
for (const k of keys) store.set(`bare:${k}`, json);

const neverCalled = (): Promise<never> => Promise.reject(new Error('a loader ran: not every call was a hit'));
const ops: Record<string, (i: number) => Promise<unknown>> = {
  'bare GET (bytes)': () => client.getBuffer('bare:bytes'),
  'wrapJson hit': () => cat.wrapJson('bytes', neverCalled),
  'bare GET + JSON.parse': async (i) => JSON.parse((await client.get(`bare:${keys[i % keys.length]!}`)) ?? 'null') as unknown,
  'getOrSet hit': (i) => cat.getOrSet(keys[i % keys.length]!, neverCalled),
};
const names = Object.keys(ops);
for (const n of names) await runBounded(CALLS / 10, IN_FLIGHT, ops[n]!);
const { cpu } = await alternatingCpu(ops, ROUNDS, CALLS, IN_FLIGHT);
const us = (n: string): number => median(cpu[n]!);
process.stdout.write(
  `library CPU per hit (stand-in client answering at once, ${ROUNDS} alternating rounds x ${CALLS} calls, ${IN_FLIGHT} in flight, ${json.length} B value):\n` +
    names.map((n) => `  ${n.padEnd(24)} ${us(n).toFixed(2)} µs`).join('\n') +
    `\n  wrapJson over bare GET: ${(us('wrapJson hit') - us('bare GET (bytes)')).toFixed(2)} µs; getOrSet over bare GET + JSON.parse: ${(us('getOrSet hit') - us('bare GET + JSON.parse')).toFixed(2)} µs\n`,
);
await cache.close();
