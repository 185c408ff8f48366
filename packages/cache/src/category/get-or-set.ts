import type { CacheResult, GetOrSetOptions } from '../types.js';
import { checkTtl, type CategoryCore } from './core.js';
import { countL1Hit, fillL1 } from './l1.js';
import { acquire, holding, newLease, type LeaseReply } from './lease.js';
import { readEntry } from './read.js';
import { write, writeEntry } from './write.js';

type Loader<V> = () => Promise<V>;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** XFetch: refresh early with a probability that rises as expiry nears and with the loader's cost. */
function refreshEarly(meta: { expiresAt: number; delta: number } | undefined, beta: number | undefined, now: number): boolean {
  return meta !== undefined && beta !== undefined && beta > 0 && now - meta.delta * beta * Math.log(Math.random()) >= meta.expiresAt;
}

export async function getOrSetResult<V>(core: CategoryCore, key: string, loader: Loader<V>, opts: GetOrSetOptions): Promise<CacheResult<V>> {
  checkTtl(opts.ttl);
  const full = core.key(key);
  if (core.l1) {
    const hit = core.l1.get(full);
    if (hit) {
      countL1Hit(core);
      if (refreshEarly(hit.meta, opts.earlyRefreshBeta, Date.now())) refreshInBackground(core, full, loader, opts, hit.meta!.expiresAt);
      return { value: hit.value as V, hit: true };
    }
  }
  const running = core.inflight.get(full);
  if (running) return tally(core, running as Promise<CacheResult<V>>);
  // A hit costs one read and nothing else; only a miss registers a flight that concurrent callers join.
  // Reads and the flight's lease and write share one connection, so a read sent before the flight's write
  // is answered while the flight is still registered.
  const cached = await lookup(core, full, loader, opts);
  if (cached.hit) return { value: cached.value as V, hit: true };
  const flight = core.inflight.get(full) ?? core.inflight.start(full, () => load(core, full, loader, opts, cached.redisOk));
  return tally(core, flight as Promise<CacheResult<V>>);
}

export async function wrapJsonResult(core: CategoryCore, key: string, loader: Loader<unknown>, opts: GetOrSetOptions): Promise<CacheResult<Buffer>> {
  const { value, hit } = await getOrSetResult<unknown>(core, key, async () => Buffer.from(JSON.stringify(await loader()) ?? 'null'), opts);
  // An entry written by set() under the same key may hold a non-Buffer value: answer its JSON bytes.
  return { value: Buffer.isBuffer(value) ? value : Buffer.from(JSON.stringify(value) ?? 'null'), hit };
}

/**
 * One hit or one miss per getOrSet call, as its `hit` says: a caller that waited on this process's load shares its
 * miss, one answered by another replica's load is a hit, and a failed load is a miss for each of its callers.
 */
async function tally<V>(core: CategoryCore, flight: Promise<CacheResult<V>>): Promise<CacheResult<V>> {
  let result: CacheResult<V>;
  try {
    result = await flight;
  } catch (err) {
    core.ctx.stats.incr(core.name, 'misses');
    throw err;
  }
  core.ctx.stats.incr(core.name, result.hit ? 'hits' : 'misses');
  return result;
}

/** The Redis read of getOrSet: a fresh entry, or a stale one within grace (refreshed in the background), is a hit. Counts hits only (misses: tally). */
async function lookup<V>(core: CategoryCore, full: string, loader: Loader<V>, opts: GetOrSetOptions): Promise<{ hit: true; value: unknown } | { hit: false; redisOk: boolean }> {
  const grace = core.graceOf(opts);
  const token = core.l1?.begin() ?? 0;
  let buf: Buffer | null = null;
  let pttl: number | undefined;
  try {
    [buf, pttl] = await readEntry(core, full);
  } catch (err) {
    core.fail('getOrSet', err);
    return { hit: false, redisOk: false };
  }
  const entry = core.safeDecode(buf);
  if (entry) {
    const now = Date.now();
    const meta = core.def.sliding ? undefined : entry.meta;
    if (!meta || now < meta.expiresAt) {
      core.ctx.stats.incr(core.name, 'hits');
      if (buf) fillL1(core, full, token, entry, buf.length, pttl);
      if (refreshEarly(meta, opts.earlyRefreshBeta, now)) refreshInBackground(core, full, loader, opts, meta!.expiresAt);
      return { hit: true, value: entry.value };
    }
    if (now < meta.expiresAt + grace * 1000) {
      // Stale-while-revalidate: serve the stale value, one caller refreshes it.
      core.ctx.stats.incr(core.name, 'hits');
      refreshInBackground(core, full, loader, opts, meta.expiresAt);
      return { hit: true, value: entry.value };
    }
  }
  return { hit: false, redisOk: true };
}

/**
 * The miss path, run once per key per process. With Redis failing the loader's value is not written back:
 * the write would only wait out a second timeout.
 */
async function load<V>(core: CategoryCore, full: string, loader: Loader<V>, opts: GetOrSetOptions, redisOk: boolean): Promise<CacheResult<V>> {
  if (!redisOk) return { value: await loader(), hit: false };
  if (opts.lease === false) return { value: await loadAndStore(core, full, loader, opts, await generation(core)), hit: false };
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

async function generation(core: CategoryCore): Promise<string | undefined> {
  try {
    return (await core.ctx.runner.run((c) => c.hget(core.genKey, core.genField))) ?? '';
  } catch (err) {
    core.fail('generation', err);
    return undefined;
  }
}
