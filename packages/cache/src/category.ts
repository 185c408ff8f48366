import { randomUUID } from 'node:crypto';
import type { L1Entry, L1Tier } from './l1.js';
import type { L1Sync } from './l1-sync.js';
import { Flights } from './flights.js';
import type { ErrorReporter } from './reporter.js';
import type { RedisRunner } from './runner.js';
import type { StatsRecorder } from './stats.js';
import { entryKey, categoryPrefix, genField, leaseKey, statsKey, tagKey } from './keys.js';
import { decode, decodeMeta, encode, HEADER_BYTES, type Decoded, type EntryMeta } from './serialization.js';
import { ACQUIRE, RELEASE, WRITE, runScript } from './scripts.js';
import { bumpGenerations, scanUnlink, validateGlob } from './invalidation.js';
import type { CacheResult, CategoryCache, GetOrSetOptions, L1Info, ManyEntry, ResolvedCategory, SetOptions } from './types.js';

/** What a category shares with its Cache. */
export interface CategoryContext {
  service: string;
  runner: RedisRunner;
  stats: StatsRecorder;
  reporter: ErrorReporter;
  jitter: number;
  leaseTtlMs: number;
  /** Cross-replica L1 invalidation; present when some category has an L1. */
  sync?: L1Sync | undefined;
}

interface WriteEntry {
  key: string;
  payload: Buffer;
  /** Redis TTL: logical TTL + grace. */
  px: number;
  /** Logical TTL (the longest the entry may live in L1). */
  logicalPx: number;
  tags: string[];
  /** What L1 holds once the write landed. */
  l1: L1Entry;
}

const NO_L1: L1Info = { entries: 0, bytes: 0, maxBytes: 0, enabled: false };

/** ACQUIRE's answer: code, generation, value. */
type AcquireReply = [number, Buffer | string | undefined, Buffer | undefined];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function checkTtl(ttl: number | undefined): void {
  if (ttl !== undefined && !(Number.isFinite(ttl) && ttl > 0)) throw new RangeError(`ttl must be a positive number of seconds, got ${String(ttl)}`);
}

export class Category implements CategoryCache {
  readonly name: string;
  readonly ttl: number;
  private readonly prefix: string;
  /** Invalidation generation: field `genField` of hash `genKey` (the stats hash); see WRITE in scripts.ts. */
  readonly genKey: string;
  readonly genField: string;
  /** Single-flight: one loader per key per process; every concurrent caller awaits the same promise. */
  private readonly inflight = new Flights<CacheResult<unknown>>();
  private readonly refreshing = new Flights<void>();

  constructor(
    private readonly ctx: CategoryContext,
    readonly def: ResolvedCategory,
    /** The in-process tier, when the category has one (never for sliding categories). */
    private readonly l1?: L1Tier,
  ) {
    this.name = def.name;
    this.ttl = def.ttl;
    this.prefix = categoryPrefix(ctx.service, def.name);
    this.genKey = statsKey(ctx.service);
    this.genField = genField(def.name);
  }

  key(key: string): string {
    return entryKey(this.ctx.service, this.name, String(key));
  }

  // ---- reads -------------------------------------------------------------------------------------------

  async get<V = unknown>(key: string): Promise<V | undefined> {
    const full = this.key(key);
    const l1 = this.l1;
    if (l1) {
      const hit = l1.get(full);
      if (hit) {
        this.countL1Hit();
        return hit.value as V;
      }
    }
    const token = l1?.begin() ?? 0;
    let buf: Buffer | null;
    let pttl: number | undefined;
    try {
      [buf, pttl] = await this.read(full);
    } catch (err) {
      this.fail('get', err);
      return undefined;
    }
    const entry = this.fresh(buf);
    this.ctx.stats.incr(this.name, entry ? 'hits' : 'misses');
    if (entry && buf) this.fillL1(full, token, entry, buf.length, pttl);
    return entry?.value as V | undefined;
  }

  async has(key: string): Promise<boolean> {
    const full = this.key(key);
    if (this.l1?.get(full)) return true;
    try {
      // Only the header: enough to tell a live entry from a missing or logically expired one.
      const head = await this.ctx.runner.run((c) => c.getrangeBuffer(full, 0, HEADER_BYTES - 1));
      if (!head || head.length === 0) return false;
      const meta = decodeMeta(head);
      return !(meta && !this.def.sliding && Date.now() >= meta.expiresAt);
    } catch (err) {
      this.fail('has', err);
      return false;
    }
  }

  async mget<V = unknown>(keys: string[]): Promise<Array<V | undefined>> {
    if (keys.length === 0) return [];
    const fulls = keys.map((k) => this.key(k));
    const out: Array<V | undefined> = new Array<V | undefined>(keys.length).fill(undefined);
    const l1 = this.l1;
    // Indexes of the keys to read from Redis.
    let todo: number[];
    let l1Hits = 0;
    if (l1) {
      todo = [];
      for (let i = 0; i < fulls.length; i++) {
        const hit = l1.get(fulls[i] as string);
        if (hit) {
          out[i] = hit.value as V;
          l1Hits++;
        } else {
          todo.push(i);
        }
      }
      this.countL1Hit(l1Hits);
      if (todo.length === 0) return out;
    } else {
      todo = fulls.map((_, i) => i);
    }
    const wanted = todo.map((i) => fulls[i] as string);
    const token = l1?.begin() ?? 0;
    const withTtl = l1?.enabled === true;
    let bufs: Array<Buffer | null>;
    let ttls: number[] | undefined;
    try {
      [bufs, ttls] = await this.ctx.runner.run(async (c): Promise<[Array<Buffer | null>, number[] | undefined]> => {
        if (!this.def.sliding && !withTtl) return [await c.mgetBuffer(...wanted), undefined];
        const started = Date.now();
        const pipe = c.pipeline().mgetBuffer(...wanted);
        for (const k of wanted) {
          if (this.def.sliding) pipe.pexpire(k, this.ttlMs());
          else pipe.pttl(k);
        }
        const res = await pipe.exec();
        const [err, value] = res?.[0] ?? [new Error('empty pipeline reply')];
        if (err) throw err;
        if (!withTtl) return [value as Array<Buffer | null>, undefined];
        const elapsed = Date.now() - started;
        const pttls = wanted.map((_, j) => {
          const [ttlErr, ttl] = res?.[j + 1] ?? [new Error('empty pipeline reply')];
          const pttl = ttlErr ? -2 : Number(ttl);
          return pttl > 0 ? Math.max(1, pttl - elapsed) : pttl;
        });
        return [value as Array<Buffer | null>, pttls];
      });
    } catch (err) {
      this.fail('mget', err);
      return out;
    }
    let hits = 0;
    bufs.forEach((b, j) => {
      const e = this.fresh(b);
      if (!e) return;
      hits++;
      const i = todo[j] as number;
      out[i] = e.value as V;
      if (b) this.fillL1(fulls[i] as string, token, e, b.length, ttls?.[j]);
    });
    this.ctx.stats.incr(this.name, 'hits', hits);
    this.ctx.stats.incr(this.name, 'misses', wanted.length - hits);
    return out;
  }

  // ---- writes ------------------------------------------------------------------------------------------

  async set<V = unknown>(key: string, value: V, opts: SetOptions = {}): Promise<boolean> {
    checkTtl(opts.ttl);
    return this.write([this.entry(this.key(key), value, opts)], 'set');
  }

  async mset<V = unknown>(entries: ManyEntry<V>[]): Promise<boolean> {
    if (entries.length === 0) return true;
    for (const e of entries) checkTtl(e.ttl);
    return this.write(
      entries.map((e) => this.entry(this.key(e.key), e.value, { ...(e.ttl !== undefined ? { ttl: e.ttl } : {}), ...(e.tags ? { tags: e.tags } : {}) })),
      'mset',
    );
  }

  async delete(key: string): Promise<boolean> {
    return (await this.invalidate([key])) > 0;
  }

  async invalidate(keys: string[]): Promise<number> {
    if (keys.length === 0) return 0;
    const fulls = keys.map((k) => this.key(k));
    const sync = this.l1 ? this.ctx.sync : undefined;
    try {
      const n = await this.ctx.runner.run(async (c) => {
        // The leases go too: a load that starts after this one must not wait for a load whose write will be dropped.
        const leases = fulls.map((f) => leaseKey(this.ctx.service, f));
        const pipe = c.pipeline().hincrby(this.genKey, this.genField, 1).unlink(...fulls).unlink(...leases);
        // Same pipeline: sent right behind the UNLINK, without another round trip; its own failure is ignored.
        if (sync) pipe.publish(sync.channel, sync.message(this.name, fulls));
        const res = await pipe.exec();
        const [err, removed] = res?.[1] ?? [new Error('empty pipeline reply')];
        if (err) throw err;
        return Number(removed);
      });
      this.l1?.evict(fulls);
      this.detachLoads(fulls);
      this.ctx.stats.incr(this.name, 'deletes', n);
      return n;
    } catch (err) {
      // It may have landed all the same.
      this.l1?.evict(fulls);
      this.detachLoads(fulls);
      this.fail('invalidate', err);
      return 0;
    }
  }

  async invalidatePattern(glob: string): Promise<number> {
    validateGlob(glob);
    return this.unlinkMatching(this.prefix + glob, 'invalidatePattern');
  }

  async clear(): Promise<number> {
    return this.unlinkMatching(`${this.prefix}*`, 'clear');
  }

  // ---- loaders -----------------------------------------------------------------------------------------

  async getOrSet<V>(key: string, loader: () => Promise<V>, opts: GetOrSetOptions = {}): Promise<V> {
    return (await this.getOrSetResult(key, loader, opts)).value;
  }

  async getOrSetResult<V>(key: string, loader: () => Promise<V>, opts: GetOrSetOptions = {}): Promise<CacheResult<V>> {
    checkTtl(opts.ttl);
    const full = this.key(key);
    if (this.l1) {
      const hit = this.l1.get(full);
      if (hit) {
        this.countL1Hit();
        const meta = hit.meta;
        const beta = opts.earlyRefreshBeta;
        if (meta && beta && beta > 0 && Date.now() - meta.delta * beta * Math.log(Math.random()) >= meta.expiresAt) {
          this.refreshInBackground(full, loader, opts, meta.expiresAt);
        }
        return { value: hit.value as V, hit: true };
      }
    }
    const running = this.inflight.get(full);
    if (running) return this.tally(running as Promise<CacheResult<V>>);
    // A hit costs one read and nothing else; only a miss registers a flight that concurrent callers join.
    // Reads and the flight's lease and write share one connection, so a read sent before the flight's write
    // is answered while the flight is still registered.
    const cached = await this.lookup(full, loader, opts);
    if (cached.hit) return { value: cached.value as V, hit: true };
    const flight = this.inflight.get(full) ?? this.inflight.start(full, () => this.load(full, loader, opts, cached.redisOk));
    return this.tally(flight as Promise<CacheResult<V>>);
  }

  /**
   * Invalidations call this once Redis answered them (or failed to): these keys' loads and refreshes (all of the
   * category's without `fulls`) go on for the callers that share them, but a later getOrSet starts its own.
   */
  detachLoads(fulls?: readonly string[]): void {
    this.inflight.detach(fulls);
    this.refreshing.detach(fulls);
  }

  async wrapJson(key: string, loader: () => Promise<unknown>, opts: GetOrSetOptions = {}): Promise<Buffer> {
    return (await this.wrapJsonResult(key, loader, opts)).value;
  }

  async wrapJsonResult(key: string, loader: () => Promise<unknown>, opts: GetOrSetOptions = {}): Promise<CacheResult<Buffer>> {
    const { value, hit } = await this.getOrSetResult<unknown>(key, async () => Buffer.from(JSON.stringify(await loader()) ?? 'null'), opts);
    // An entry written by set() under the same key may hold a non-Buffer value: answer its JSON bytes.
    return { value: Buffer.isBuffer(value) ? value : Buffer.from(JSON.stringify(value) ?? 'null'), hit };
  }

  l1Info(): L1Info {
    return this.l1?.info() ?? { ...NO_L1 };
  }

  /** Background refreshes still running (Cache.close waits for them, bounded). */
  pending(): Promise<unknown>[] {
    return this.refreshing.pending();
  }

  /**
   * One hit or one miss per getOrSet call, as its `hit` says: a caller that waited on this process's load shares its
   * miss, one answered by another replica's load is a hit, and a failed load is a miss for each of its callers.
   */
  private async tally<V>(flight: Promise<CacheResult<V>>): Promise<CacheResult<V>> {
    let result: CacheResult<V>;
    try {
      result = await flight;
    } catch (err) {
      this.ctx.stats.incr(this.name, 'misses');
      throw err;
    }
    this.ctx.stats.incr(this.name, result.hit ? 'hits' : 'misses');
    return result;
  }

  /** The Redis read of getOrSet: a fresh entry, or a stale one within grace (refreshed in the background), is a hit. Counts hits only (misses: tally). */
  private async lookup<V>(full: string, loader: () => Promise<V>, opts: GetOrSetOptions): Promise<{ hit: true; value: unknown } | { hit: false; redisOk: boolean }> {
    const grace = this.graceOf(opts);
    const token = this.l1?.begin() ?? 0;
    let buf: Buffer | null = null;
    let pttl: number | undefined;
    try {
      [buf, pttl] = await this.read(full);
    } catch (err) {
      this.fail('getOrSet', err);
      return { hit: false, redisOk: false };
    }
    const entry = this.safeDecode(buf);
    if (entry) {
      const now = Date.now();
      const meta = this.def.sliding ? undefined : entry.meta;
      if (!meta || now < meta.expiresAt) {
        this.ctx.stats.incr(this.name, 'hits');
        if (buf) this.fillL1(full, token, entry, buf.length, pttl);
        const beta = opts.earlyRefreshBeta;
        // XFetch: refresh early with a probability that rises as expiry nears and with the loader's cost.
        if (meta && beta && beta > 0 && now - meta.delta * beta * Math.log(Math.random()) >= meta.expiresAt) {
          this.refreshInBackground(full, loader, opts, meta.expiresAt);
        }
        return { hit: true, value: entry.value };
      }
      if (now < meta.expiresAt + grace * 1000) {
        // Stale-while-revalidate: serve the stale value, one caller refreshes it.
        this.ctx.stats.incr(this.name, 'hits');
        this.refreshInBackground(full, loader, opts, meta.expiresAt);
        return { hit: true, value: entry.value };
      }
    }
    return { hit: false, redisOk: true };
  }

  /**
   * The miss path, run once per key per process. With Redis failing the loader's value is not written back:
   * the write would only wait out a second timeout.
   */
  private async load<V>(full: string, loader: () => Promise<V>, opts: GetOrSetOptions, redisOk: boolean): Promise<CacheResult<V>> {
    if (!redisOk) return { value: await loader(), hit: false };
    if (opts.lease === false) return { value: await this.loadAndStore(full, loader, opts, await this.generation()), hit: false };
    return this.loadWithLease(full, loader, opts);
  }

  /** Only the replica holding the lease runs the loader; the others wait for its value (bounded), then load themselves. */
  private async loadWithLease<V>(full: string, loader: () => Promise<V>, opts: GetOrSetOptions): Promise<CacheResult<V>> {
    const lease = leaseKey(this.ctx.service, full);
    const token = randomUUID();
    const giveUpAt = Date.now() + this.ctx.leaseTtlMs;
    let backoff = 5;
    for (;;) {
      let reply: AcquireReply;
      try {
        // Past its logical expiry an entry is not a hit here: lookup already found it too stale for this caller.
        const freshAfter = this.def.sliding ? 0 : Date.now();
        reply = (await this.ctx.runner.run((c) => runScript(c, ACQUIRE, [full, lease, this.genKey], [token, this.ctx.leaseTtlMs, 'miss', this.genField, freshAfter]))) as AcquireReply;
      } catch (err) {
        this.fail('lease', err);
        return { value: await loader(), hit: false };
      }
      const [code, gen, buf] = reply;
      const generation = String(gen ?? '');
      if (code === 1) {
        const entry = this.safeDecode(buf ?? null);
        if (entry) return { value: entry.value as V, hit: true };
        return { value: await this.loadAndStore(full, loader, opts, generation), hit: false };
      }
      if (code === 2) {
        try {
          return { value: await this.loadAndStore(full, loader, opts, generation), hit: false };
        } finally {
          await this.release(lease, token);
        }
      }
      if (Date.now() >= giveUpAt) return { value: await this.loadAndStore(full, loader, opts, generation), hit: false };
      await sleep(backoff);
      backoff = Math.min(backoff * 2, 100);
    }
  }

  private refreshInBackground<V>(full: string, loader: () => Promise<V>, opts: GetOrSetOptions, seenExpiresAt: number): void {
    if (this.refreshing.has(full)) return;
    const run = async (): Promise<void> => {
      const lease = leaseKey(this.ctx.service, full);
      const token = randomUUID();
      let reply: AcquireReply;
      try {
        reply = (await this.ctx.runner.run((c) => runScript(c, ACQUIRE, [full, lease, this.genKey], [token, this.ctx.leaseTtlMs, 'refresh', this.genField, 0]))) as AcquireReply;
      } catch (err) {
        this.fail('refresh', err);
        return;
      }
      const [code, gen, buf] = reply;
      if (code !== 2) return; // another replica is refreshing
      try {
        const current = this.safeDecode(buf ?? null);
        if (current?.meta && current.meta.expiresAt !== seenExpiresAt) return; // refreshed meanwhile
        await this.loadAndStore(full, loader, opts, String(gen ?? ''));
      } catch (err) {
        // Stale-if-error: the stale entry stays and keeps being served within grace.
        this.ctx.reporter.report(err, { service: this.ctx.service, op: 'refresh-loader', category: this.name });
      } finally {
        await this.release(lease, token);
      }
    };
    void this.refreshing.start(full, run);
  }

  /** `generation`: the category's invalidation generation read before the loader started (undefined: unknown, no check). */
  private async loadAndStore<V>(full: string, loader: () => Promise<V>, opts: GetOrSetOptions, generation?: string): Promise<V> {
    const started = Date.now();
    const value = await loader();
    // A loader's Buffer (wrapJson's bytes) is kept in L1 as it is: the callers of this flight share it already.
    await this.write([this.entry(full, value, opts, Date.now() - started, Buffer.isBuffer(value))], 'getOrSet', generation);
    return value;
  }

  private async generation(): Promise<string | undefined> {
    try {
      return (await this.ctx.runner.run((c) => c.hget(this.genKey, this.genField))) ?? '';
    } catch (err) {
      this.fail('generation', err);
      return undefined;
    }
  }

  private async release(lease: string, token: string): Promise<void> {
    try {
      await this.ctx.runner.run((c) => runScript(c, RELEASE, [lease], [token]));
    } catch {
      // The lease expires on its own.
    }
  }

  // ---- helpers -----------------------------------------------------------------------------------------

  private graceOf(opts: { grace?: number }): number {
    if (this.def.sliding) return 0;
    const g = opts.grace ?? this.def.grace;
    return Number.isFinite(g) && g > 0 ? g : 0;
  }

  /** TTL with random jitter, ms: ttl * (1 + random * jitter), never below the TTL. */
  private ttlMs(ttl = this.ttl): number {
    const base = ttl * 1000;
    return Math.max(Math.ceil(base), Math.round(base * (1 + Math.random() * this.ctx.jitter)));
  }

  /**
   * L1 holds exactly what a Redis read would answer: `value` itself where that is the same thing (a string; a Buffer
   * when `keepBuffer`), else the encoded bytes, decoded on the first L1 hit (a Date comes back as its JSON string, as
   * from Redis, and a caller changing an object after set() changes nothing that is read).
   */
  private entry(full: string, value: unknown, opts: GetOrSetOptions, delta?: number, keepBuffer = false): WriteEntry {
    const px = this.ttlMs(opts.ttl);
    const grace = this.graceOf(opts);
    const withMeta = !this.def.sliding && (grace > 0 || delta !== undefined);
    const meta: EntryMeta | undefined = withMeta ? { expiresAt: Date.now() + px, delta: delta ?? 0 } : undefined;
    const payload = encode(value, meta);
    const keep = typeof value === 'string' || (keepBuffer && Buffer.isBuffer(value));
    const l1: L1Entry = keep ? { value, raw: undefined, meta } : { value: undefined, raw: payload, meta };
    return { key: full, payload, px: px + grace * 1000, logicalPx: px, tags: opts.tags ?? [], l1 };
  }

  private async write(entries: WriteEntry[], op: string, generation?: string): Promise<boolean> {
    const l1 = this.l1;
    const sync = l1 ? this.ctx.sync : undefined;
    const token = l1?.begin() ?? 0;
    const started = Date.now();
    const keys: string[] = [this.genKey];
    const args: Array<string | Buffer | number> = [
      this.ctx.runner.writeDeadline(),
      generation === undefined ? '0' : '1',
      this.genField,
      generation ?? '',
      sync ? sync.channel : '',
      sync ? sync.message(this.name, entries.map((e) => e.key)) : '',
    ];
    for (const e of entries) {
      keys.push(e.key, ...e.tags.map((t) => tagKey(this.ctx.service, t)));
      args.push(e.payload, e.px, e.tags.length);
    }
    try {
      const ok = Number(await this.ctx.runner.fill((c) => runScript(c, WRITE, keys, args))) === 1;
      if (ok) this.ctx.stats.incr(this.name, 'sets', entries.length);
      if (l1) {
        const elapsed = Date.now() - started;
        for (const e of entries) {
          if (ok) l1.store(e.key, token, e.l1, e.payload.length + e.key.length, e.logicalPx - elapsed);
          else l1.evict([e.key]);
        }
      }
      return ok;
    } catch (err) {
      // A timed-out write may still have landed (or not): this replica must not keep serving the old value.
      l1?.evict(entries.map((e) => e.key));
      this.fail(op, err);
      return false;
    }
  }

  /**
   * GET; for sliding categories GET + PEXPIRE, and while L1 is on GET + PTTL (how long L1 may keep it), in one
   * round trip. Answers the value and the PTTL (undefined when not asked).
   */
  private read(full: string): Promise<[Buffer | null, number | undefined]> {
    const withTtl = this.l1?.enabled === true;
    return this.ctx.runner.run(async (c): Promise<[Buffer | null, number | undefined]> => {
      if (!this.def.sliding && !withTtl) return [await c.getBuffer(full), undefined];
      const started = Date.now();
      const pipe = c.pipeline().getBuffer(full);
      if (this.def.sliding) pipe.pexpire(full, this.ttlMs());
      else pipe.pttl(full);
      const res = await pipe.exec();
      const [err, value] = res?.[0] ?? [new Error('empty pipeline reply')];
      if (err) throw err;
      const [ttlErr, ttl] = res?.[1] ?? [new Error('empty pipeline reply')];
      if (!withTtl || ttlErr) return [value as Buffer | null, undefined];
      // What is left of it now, not when Redis answered (-1: no TTL, -2: gone, kept as they are).
      const pttl = Number(ttl);
      return [value as Buffer | null, pttl > 0 ? Math.max(1, pttl - (Date.now() - started)) : pttl];
    });
  }

  /** Keeps what a read found in L1, for at most what is left of its TTL in Redis and of its logical TTL. */
  private fillL1(full: string, token: number, entry: Decoded, size: number, pttl: number | undefined): void {
    const l1 = this.l1;
    // undefined: L1 was off when the read went out; -2: expired in between.
    if (!l1 || pttl === undefined || pttl === -2) return;
    let ttl = pttl > 0 ? pttl : l1.ttlCapMs;
    if (entry.meta) ttl = Math.min(ttl, entry.meta.expiresAt - Date.now());
    l1.fill(full, token, { value: entry.value, raw: undefined, meta: entry.meta }, size + full.length, ttl);
  }

  private countL1Hit(n = 1): void {
    this.ctx.stats.incr(this.name, 'hits', n);
    this.ctx.stats.incr(this.name, 'l1_hits', n);
  }

  private safeDecode(buf: Buffer | null): Decoded | undefined {
    if (!buf || buf.length === 0) return undefined;
    try {
      return decode(buf);
    } catch (err) {
      this.ctx.reporter.report(err, { service: this.ctx.service, op: 'decode', category: this.name });
      return undefined;
    }
  }

  /** Decoded entry unless missing, unreadable or past its logical expiry (plain reads never serve stale). */
  private fresh(buf: Buffer | null): Decoded | undefined {
    const entry = this.safeDecode(buf);
    if (!entry) return undefined;
    if (entry.meta && !this.def.sliding && Date.now() >= entry.meta.expiresAt) return undefined;
    return entry;
  }

  private async unlinkMatching(match: string, op: string): Promise<number> {
    try {
      await bumpGenerations(this.ctx.runner, this.genKey, [this.genField]);
    } catch (err) {
      this.l1?.evictAll();
      this.detachLoads();
      this.fail(op, err);
      return 0;
    }
    const { removed, error } = await scanUnlink(this.ctx.runner, match);
    // A glob cannot be matched against hashed keys here: the whole category's L1 and loads go.
    this.l1?.evictAll();
    this.detachLoads();
    if (this.l1 && this.ctx.sync) await this.ctx.sync.publish(this.name);
    if (error !== undefined) this.fail(op, error);
    this.ctx.stats.incr(this.name, 'deletes', removed);
    return removed;
  }

  private fail(op: string, err: unknown): void {
    this.ctx.stats.incr(this.name, 'errors');
    this.ctx.reporter.report(err, { service: this.ctx.service, op, category: this.name });
  }
}
