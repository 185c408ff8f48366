import type { CacheResult, GetOrSetOptions, Prefetch } from '../types.js';
import { checkTtl, type CategoryCore } from './core.js';
import { fillL1, fromL1 } from './l1.js';
import { acquire, holding, newLease, type LeaseReply } from './lease.js';
import { plainRead, readEntry } from './read.js';
import { write, writeEntry } from './write.js';

type Loader<V> = () => Promise<V>;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** XFetch: refresh early with a probability that rises as expiry nears and with the loader's cost. */
function refreshEarly(meta: { expiresAt: number; delta: number }, beta: number | undefined, now: number): boolean {
  return beta !== undefined && beta > 0 && now - meta.delta * beta * Math.log(Math.random()) >= meta.expiresAt;
}

/** What a getOrSet-style call answers: the value or a CacheResult, of the value or of its JSON bytes (wrapJson). */
export const Answer = { Value: 0, Result: 1, Json: 2, JsonResult: 3 } as const;
type Answer = (typeof Answer)[keyof typeof Answer];

function jsonBytes(value: unknown): Buffer {
  // An entry written by set() under the same key may hold a non-Buffer value: answer its JSON bytes.
  return Buffer.isBuffer(value) ? value : Buffer.from(JSON.stringify(value) ?? 'null');
}

function answer(value: unknown, hit: boolean, as: Answer): unknown {
  const v = as & Answer.Json ? jsonBytes(value) : value;
  return as & Answer.Result ? { value: v, hit } : v;
}

/** wrapJson's loader: its result stored as JSON bytes. Made on a miss only, never on the hit path. */
function loaderFor(loader: Loader<unknown>, as: Answer): Loader<unknown> {
  return as & Answer.Json ? async () => Buffer.from(JSON.stringify(await loader()) ?? 'null') : loader;
}

/** What an entry read found: the bytes and (when asked) the PTTL, or the error Redis answered. */
type ReadOutcome = { ok: true; buf: Buffer | null; pttl: number | undefined } | { ok: false; err: unknown };

/** getOrSet's read, as one promise that never rejects (a prefetch may be left unawaited). */
function readOutcome(core: CategoryCore, full: string): Promise<ReadOutcome> {
  const read = plainRead(core)
    ? core.ctx.runner.getBuffer(full).then((buf): ReadOutcome => ({ ok: true, buf, pttl: undefined }))
    : readEntry(core, full).then(([buf, pttl]): ReadOutcome => ({ ok: true, buf, pttl }));
  return read.catch((err: unknown): ReadOutcome => ({ ok: false, err }));
}

/** A read sent by Category.prefetch; used by at most one getOrSet of the same category and key. */
class PrefetchedRead implements Prefetch {
  private used = false;
  constructor(
    readonly key: string,
    readonly core: CategoryCore,
    readonly full: string,
    /** The L1 fill token taken before the read went out. */
    readonly token: number,
    /** Undefined when no read was sent (L1 held the key, or a load of it was running). */
    private readonly read: Promise<ReadOutcome> | undefined,
  ) {}

  /** The read, for the one call of this category and key that asks first; undefined for any other. */
  take(core: CategoryCore, full: string): Promise<ReadOutcome> | undefined {
    if (this.used || core !== this.core || full !== this.full) return undefined;
    this.used = true;
    return this.read;
  }
}

/** Sends getOrSet's read of `key` now; counts nothing (see Category.prefetch). */
export function prefetch(core: CategoryCore, key: string): Prefetch {
  const full = core.key(key);
  const l1 = core.l1;
  const token = l1 ? l1.begin() : 0;
  const skip = l1?.get(full) !== undefined || core.inflight.get(full) !== undefined;
  return new PrefetchedRead(key, core, full, token, skip ? undefined : readOutcome(core, full));
}

/**
 * getOrSet, getOrSetResult, wrapJson and wrapJsonResult in one async function, so that a hit from Redis is this one
 * promise over the runner's: the L1 lookup, then one read (a fresh entry, or a stale one within grace refreshed in the
 * background, is a hit), and only on a miss the single-flight load. Counts one hit or one miss per call.
 */
export async function getOrSet(core: CategoryCore, key: string, loader: Loader<unknown>, opts: GetOrSetOptions, as: Answer): Promise<unknown> {
  checkTtl(opts.ttl);
  const full = core.key(key);
  const hit = fromL1(core, full);
  if (hit) {
    const meta = hit.meta;
    if (meta && refreshEarly(meta, opts.earlyRefreshBeta, Date.now())) refreshInBackground(core, full, loaderFor(loader, as), opts, meta.expiresAt);
    return answer(hit.value, true, as);
  }
  const l1 = core.l1;
  const running = core.inflight.get(full);
  if (running) {
    const joined = await tally(core, running);
    return answer(joined.value, joined.hit, as);
  }
  // A hit costs one read and nothing else; only a miss registers a flight that concurrent callers join.
  // Reads and the flight's lease and write share one connection, so a read sent before the flight's write
  // is answered while the flight is still registered.
  const pre = opts.prefetched instanceof PrefetchedRead ? opts.prefetched : undefined;
  const prefetched = pre?.take(core, full);
  const token = prefetched && pre ? pre.token : l1 ? l1.begin() : 0;
  let buf: Buffer | null;
  let pttl: number | undefined;
  let redisOk = true;
  if (prefetched) {
    const read = await prefetched;
    if (read.ok) {
      buf = read.buf;
      pttl = read.pttl;
    } else {
      core.fail('getOrSet', read.err);
      buf = null;
      redisOk = false;
    }
  } else if (plainRead(core)) {
    // The runner's GET awaited here, not through another async function: one promise layer less on every hit.
    const runner = core.ctx.runner;
    const get = runner.sendGet(full);
    try {
      buf = await get.reply;
      runner.settle(get, undefined);
    } catch (err) {
      runner.settle(get, err);
      core.fail('getOrSet', err);
      buf = null;
      redisOk = false;
    }
  } else {
    try {
      [buf, pttl] = await readEntry(core, full);
    } catch (err) {
      core.fail('getOrSet', err);
      buf = null;
      redisOk = false;
    }
  }
  const entry = core.safeDecode(buf);
  if (entry) {
    const meta = core.def.sliding ? undefined : entry.meta;
    if (!meta) {
      core.count('hits');
      if (l1) fillL1(core, full, token, entry, (buf as Buffer).length, pttl);
      return answer(entry.value, true, as);
    }
    const now = Date.now();
    if (now < meta.expiresAt) {
      core.count('hits');
      if (l1) fillL1(core, full, token, entry, (buf as Buffer).length, pttl);
      if (refreshEarly(meta, opts.earlyRefreshBeta, now)) refreshInBackground(core, full, loaderFor(loader, as), opts, meta.expiresAt);
      return answer(entry.value, true, as);
    }
    if (now < meta.expiresAt + core.graceOf(opts) * 1000) {
      // Stale-while-revalidate: serve the stale value, one caller refreshes it.
      core.count('hits');
      refreshInBackground(core, full, loaderFor(loader, as), opts, meta.expiresAt);
      return answer(entry.value, true, as);
    }
  }
  const flight = core.inflight.get(full) ?? core.inflight.start(full, () => load(core, full, loaderFor(loader, as), opts, redisOk));
  const loaded = await tally(core, flight);
  return answer(loaded.value, loaded.hit, as);
}

/**
 * One hit or one miss per getOrSet call, as its `hit` says: a caller that waited on this process's load shares its
 * miss, one answered by another replica's load is a hit, and a failed load is a miss for each of its callers.
 */
async function tally(core: CategoryCore, flight: Promise<CacheResult<unknown>>): Promise<CacheResult<unknown>> {
  let result: CacheResult<unknown>;
  try {
    result = await flight;
  } catch (err) {
    core.count('misses');
    throw err;
  }
  core.count(result.hit ? 'hits' : 'misses');
  return result;
}

/**
 * The miss path, run once per key per process. With Redis failing the loader's value is not written back:
 * the write would only wait out a second timeout.
 */
async function load<V>(core: CategoryCore, full: string, loader: Loader<V>, opts: GetOrSetOptions, redisOk: boolean): Promise<CacheResult<V>> {
  if (!redisOk) return { value: await loader(), hit: false };
  if (opts.lease === false) return { value: await loadAndStore(core, full, loader, opts, await generation(core, full)), hit: false };
  return loadWithLease(core, full, loader, opts);
}

/** Only the replica holding the lease runs the loader; the others wait for its value (bounded), then load themselves. */
async function loadWithLease<V>(core: CategoryCore, full: string, loader: Loader<V>, opts: GetOrSetOptions): Promise<CacheResult<V>> {
  const lease = newLease(core, full);
  const giveUpAt = Date.now() + core.ctx.leaseTtlMs;
  let backoff = 5;
  for (;;) {
    let reply: LeaseReply;
    try {
      // Past its logical expiry an entry is not a hit here: lookup already found it too stale for this caller.
      reply = await acquire(core, full, lease, 'miss', core.def.sliding ? 0 : Date.now());
    } catch (err) {
      core.fail('lease', err);
      return { value: await loader(), hit: false };
    }
    const { state, generation } = reply;
    if (state === 'fresh') {
      const entry = core.safeDecode(reply.value);
      if (entry) return { value: entry.value as V, hit: true };
      return { value: await loadAndStore(core, full, loader, opts, generation), hit: false };
    }
    if (state === 'held') return holding(core, lease, async () => ({ value: await loadAndStore(core, full, loader, opts, generation), hit: false }));
    if (Date.now() >= giveUpAt) return { value: await loadAndStore(core, full, loader, opts, generation), hit: false };
    if (backoff === 5) core.leaseWaits++;
    await sleep(backoff);
    backoff = Math.min(backoff * 2, 100);
  }
}

/** One refresh per key per process, and (through the lease) per service; the stale entry is served meanwhile. */
function refreshInBackground<V>(core: CategoryCore, full: string, loader: Loader<V>, opts: GetOrSetOptions, seenExpiresAt: number): void {
  if (core.refreshing.has(full)) return;
  const run = async (): Promise<void> => {
    const lease = newLease(core, full);
    let reply: LeaseReply;
    try {
      reply = await acquire(core, full, lease, 'refresh', 0);
    } catch (err) {
      core.fail('refresh', err);
      return;
    }
    if (reply.state !== 'held') return; // another replica is refreshing
    await holding(core, lease, async () => {
      try {
        const current = core.safeDecode(reply.value);
        if (current?.meta && current.meta.expiresAt !== seenExpiresAt) return; // refreshed meanwhile
        await loadAndStore(core, full, loader, opts, reply.generation);
      } catch (err) {
        // Stale-if-error: the stale entry stays and keeps being served within grace.
        core.ctx.reporter.report(err, { service: core.ctx.service, op: 'refresh-loader', category: core.name });
      }
    });
  };
  void core.refreshing.start(full, run);
}

/** `generation`: the category's invalidation generation read before the loader started (undefined: unknown, no check). */
async function loadAndStore<V>(core: CategoryCore, full: string, loader: Loader<V>, opts: GetOrSetOptions, generation?: string): Promise<V> {
  const started = Date.now();
  const value = await loader();
  // A loader's Buffer (wrapJson's bytes) is kept in L1 as it is: the callers of this flight share it already.
  await write(core, [writeEntry(core, full, value, opts, Date.now() - started, Buffer.isBuffer(value))], 'getOrSet', generation);
  return value;
}

async function generation(core: CategoryCore, full: string): Promise<string | undefined> {
  try {
    return (await core.ctx.runner.run((c) => c.hget(core.genKeyOf(full), core.genField))) ?? '';
  } catch (err) {
    core.fail('generation', err);
    return undefined;
  }
}
