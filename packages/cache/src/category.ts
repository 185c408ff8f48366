import { randomUUID } from 'node:crypto';
import type { ErrorReporter } from './reporter.js';
import type { RedisRunner } from './runner.js';
import type { StatsRecorder } from './stats.js';
import { entryKey, categoryPrefix, genField, leaseKey, statsKey, tagKey } from './keys.js';
import { decode, decodeMeta, encode, HEADER_BYTES, type Decoded, type EntryMeta } from './serialization.js';
import { ACQUIRE, RELEASE, WRITE, runScript } from './scripts.js';
import { bumpGenerations, scanUnlink, validateGlob } from './invalidation.js';
import type { CategoryCache, GetOrSetOptions, ManyEntry, ResolvedCategory, SetOptions } from './types.js';

/** What a category shares with its Cache. */
export interface CategoryContext {
  service: string;
  runner: RedisRunner;
  stats: StatsRecorder;
  reporter: ErrorReporter;
  jitter: number;
  leaseTtlMs: number;
}

interface WriteEntry {
  key: string;
  payload: Buffer;
  px: number;
  tags: string[];
}

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
  private readonly inflight = new Map<string, Promise<unknown>>();
  private readonly refreshing = new Map<string, Promise<void>>();

  constructor(
    private readonly ctx: CategoryContext,
    readonly def: ResolvedCategory,
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
    let buf: Buffer | null;
    try {
      buf = await this.read(full);
    } catch (err) {
      this.fail('get', err);
      return undefined;
    }
    const entry = this.fresh(buf);
    this.ctx.stats.incr(this.name, entry ? 'hits' : 'misses');
    return entry?.value as V | undefined;
  }

  async has(key: string): Promise<boolean> {
    const full = this.key(key);
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
    let bufs: Array<Buffer | null>;
    try {
      bufs = await this.ctx.runner.run(async (c) => {
        if (!this.def.sliding) return c.mgetBuffer(...fulls);
        const pipe = c.pipeline().mgetBuffer(...fulls);
        for (const k of fulls) pipe.pexpire(k, this.ttlMs());
        const res = await pipe.exec();
        const [err, value] = res?.[0] ?? [new Error('empty pipeline reply')];
        if (err) throw err;
        return value as Array<Buffer | null>;
      });
    } catch (err) {
      this.fail('mget', err);
      return keys.map(() => undefined);
    }
    let hits = 0;
    const out = bufs.map((b) => {
      const e = this.fresh(b);
      if (e) hits++;
      return e?.value as V | undefined;
    });
    this.ctx.stats.incr(this.name, 'hits', hits);
    this.ctx.stats.incr(this.name, 'misses', keys.length - hits);
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
    try {
      const n = await this.ctx.runner.run(async (c) => {
        const res = await c.pipeline().hincrby(this.genKey, this.genField, 1).unlink(...fulls).exec();
        const [err, removed] = res?.[1] ?? [new Error('empty pipeline reply')];
        if (err) throw err;
        return Number(removed);
      });
      this.ctx.stats.incr(this.name, 'deletes', n);
      return n;
    } catch (err) {
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

  getOrSet<V>(key: string, loader: () => Promise<V>, opts: GetOrSetOptions = {}): Promise<V> {
    checkTtl(opts.ttl);
    const full = this.key(key);
    const running = this.inflight.get(full);
    if (running) return running as Promise<V>;
    const p = this.resolve(full, loader, opts).finally(() => this.inflight.delete(full));
    this.inflight.set(full, p);
    return p;
  }

  async wrapJson(key: string, loader: () => Promise<unknown>, opts: GetOrSetOptions = {}): Promise<Buffer> {
    const value = await this.getOrSet<unknown>(key, async () => Buffer.from(JSON.stringify(await loader()) ?? 'null'), opts);
    // An entry written by set() under the same key may hold a non-Buffer value: answer its JSON bytes.
    return Buffer.isBuffer(value) ? value : Buffer.from(JSON.stringify(value) ?? 'null');
  }

  /** Background refreshes still running (Cache.close waits for them, bounded). */
  pending(): Promise<unknown>[] {
    return [...this.refreshing.values()];
  }

  private async resolve<V>(full: string, loader: () => Promise<V>, opts: GetOrSetOptions): Promise<V> {
    const grace = this.graceOf(opts);
    let buf: Buffer | null = null;
    let redisOk = true;
    try {
      buf = await this.read(full);
    } catch (err) {
      this.fail('getOrSet', err);
      redisOk = false;
    }
    const entry = this.safeDecode(buf);
    if (entry) {
      const now = Date.now();
      const meta = this.def.sliding ? undefined : entry.meta;
      if (!meta || now < meta.expiresAt) {
        this.ctx.stats.incr(this.name, 'hits');
        const beta = opts.earlyRefreshBeta;
        // XFetch: refresh early with a probability that rises as expiry nears and with the loader's cost.
        if (meta && beta && beta > 0 && now - meta.delta * beta * Math.log(Math.random()) >= meta.expiresAt) {
          this.refreshInBackground(full, loader, opts, meta.expiresAt);
        }
        return entry.value as V;
      }
      if (now < meta.expiresAt + grace * 1000) {
        // Stale-while-revalidate: serve the stale value, one caller refreshes it.
        this.ctx.stats.incr(this.name, 'hits');
        this.refreshInBackground(full, loader, opts, meta.expiresAt);
        return entry.value as V;
      }
    }
    this.ctx.stats.incr(this.name, 'misses');
    if (!redisOk) return this.loadAndStore(full, loader, opts);
    if (opts.lease === false) return this.loadAndStore(full, loader, opts, await this.generation());
    return this.loadWithLease(full, loader, opts);
  }

  /** Only the replica holding the lease runs the loader; the others wait for its value (bounded), then load themselves. */
  private async loadWithLease<V>(full: string, loader: () => Promise<V>, opts: GetOrSetOptions): Promise<V> {
    const lease = leaseKey(this.ctx.service, full);
    const token = randomUUID();
    const giveUpAt = Date.now() + this.ctx.leaseTtlMs;
    let backoff = 5;
    for (;;) {
      let reply: AcquireReply;
      try {
        reply = (await this.ctx.runner.run((c) => runScript(c, ACQUIRE, [full, lease, this.genKey], [token, this.ctx.leaseTtlMs, 'miss', this.genField]))) as AcquireReply;
      } catch (err) {
        this.fail('lease', err);
        return this.loadAndStore(full, loader, opts);
      }
      const [code, gen, buf] = reply;
      const generation = String(gen ?? '');
      if (code === 1) {
        const entry = this.safeDecode(buf ?? null);
        if (entry) return entry.value as V;
        return this.loadAndStore(full, loader, opts, generation);
      }
      if (code === 2) {
        try {
          return await this.loadAndStore(full, loader, opts, generation);
        } finally {
          await this.release(lease, token);
        }
      }
      if (Date.now() >= giveUpAt) return this.loadAndStore(full, loader, opts, generation);
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
        reply = (await this.ctx.runner.run((c) => runScript(c, ACQUIRE, [full, lease, this.genKey], [token, this.ctx.leaseTtlMs, 'refresh', this.genField]))) as AcquireReply;
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
    const p = run().finally(() => this.refreshing.delete(full));
    this.refreshing.set(full, p);
  }

  /** `generation`: the category's invalidation generation read before the loader started (undefined: unknown, no check). */
  private async loadAndStore<V>(full: string, loader: () => Promise<V>, opts: GetOrSetOptions, generation?: string): Promise<V> {
    const started = Date.now();
    const value = await loader();
    await this.write([this.entry(full, value, opts, Date.now() - started)], 'getOrSet', generation);
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

  private entry(full: string, value: unknown, opts: GetOrSetOptions, delta?: number): WriteEntry {
    const px = this.ttlMs(opts.ttl);
    const grace = this.graceOf(opts);
    const withMeta = !this.def.sliding && (grace > 0 || delta !== undefined);
    const meta: EntryMeta | undefined = withMeta ? { expiresAt: Date.now() + px, delta: delta ?? 0 } : undefined;
    return { key: full, payload: encode(value, meta), px: px + grace * 1000, tags: opts.tags ?? [] };
  }

  private async write(entries: WriteEntry[], op: string, generation?: string): Promise<boolean> {
    const keys: string[] = [this.genKey];
    const args: Array<string | Buffer | number> = [this.ctx.runner.writeDeadline(), generation === undefined ? '0' : '1', this.genField, generation ?? ''];
    for (const e of entries) {
      keys.push(e.key, ...e.tags.map((t) => tagKey(this.ctx.service, t)));
      args.push(e.payload, e.px, e.tags.length);
    }
    try {
      const ok = Number(await this.ctx.runner.run((c) => runScript(c, WRITE, keys, args))) === 1;
      if (ok) this.ctx.stats.incr(this.name, 'sets', entries.length);
      return ok;
    } catch (err) {
      this.fail(op, err);
      return false;
    }
  }

  /** GET, or for sliding categories GET + PEXPIRE in one round trip. */
  private read(full: string): Promise<Buffer | null> {
    return this.ctx.runner.run(async (c) => {
      if (!this.def.sliding) return c.getBuffer(full);
      const res = await c.pipeline().getBuffer(full).pexpire(full, this.ttlMs()).exec();
      const [err, value] = res?.[0] ?? [new Error('empty pipeline reply')];
      if (err) throw err;
      return value as Buffer | null;
    });
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
      this.fail(op, err);
      return 0;
    }
    const { removed, error } = await scanUnlink(this.ctx.runner, match);
    if (error !== undefined) this.fail(op, error);
    this.ctx.stats.incr(this.name, 'deletes', removed);
    return removed;
  }

  private fail(op: string, err: unknown): void {
    this.ctx.stats.incr(this.name, 'errors');
    this.ctx.reporter.report(err, { service: this.ctx.service, op, category: this.name });
  }
}
