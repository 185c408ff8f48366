import type { L1Entry } from '../l1.js';
import { tagKey } from '../keys.js';
import { encode, type EntryMeta } from '../serialization.js';
import { runScript, WRITE } from '../scripts.js';
import type { GetOrSetOptions, ManyEntry, SetOptions } from '../types.js';
import { checkTtl, type CategoryCore } from './core.js';

export interface WriteEntry {
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

/**
 * L1 holds exactly what a Redis read would answer: `value` itself where that is the same thing (a string; a Buffer
 * when `keepBuffer`), else the encoded bytes, decoded on the first L1 hit (a Date comes back as its JSON string, as
 * from Redis, and a caller changing an object after set() changes nothing that is read).
 */
export function writeEntry(core: CategoryCore, full: string, value: unknown, opts: GetOrSetOptions, delta?: number, keepBuffer = false): WriteEntry {
  const px = core.ttlMs(opts.ttl);
  const grace = core.graceOf(opts);
  const withMeta = !core.def.sliding && (grace > 0 || delta !== undefined);
  const meta: EntryMeta | undefined = withMeta ? { expiresAt: Date.now() + px, delta: delta ?? 0 } : undefined;
  const payload = encode(value, meta);
  const keep = typeof value === 'string' || (keepBuffer && Buffer.isBuffer(value));
  const l1: L1Entry = keep ? { value, raw: undefined, meta } : { value: undefined, raw: payload, meta };
  return { key: full, payload, px: px + grace * 1000, logicalPx: px, tags: opts.tags ?? [], l1 };
}

/**
 * One WRITE script call for every entry: dropped by Redis past the write deadline, or when `generation` (read before
 * a loader ran) is no longer the category's. L1 keeps what landed and forgets what may not have.
 */
export async function write(core: CategoryCore, entries: WriteEntry[], op: string, generation?: string): Promise<boolean> {
  const { ctx, l1 } = core;
  const sync = l1 ? ctx.sync : undefined;
  const token = l1?.begin() ?? 0;
  const started = Date.now();
  const keys: string[] = [core.genKey];
  const args: Array<string | Buffer | number> = [
    ctx.runner.writeDeadline(),
    generation === undefined ? '0' : '1',
    core.genField,
    generation ?? '',
    sync ? sync.channel : '',
    sync ? sync.message(core.name, entries.map((e) => e.key)) : '',
  ];
  for (const e of entries) {
    keys.push(e.key, ...e.tags.map((t) => tagKey(ctx.service, t)));
    args.push(e.payload, e.px, e.tags.length);
  }
  try {
    const ok = Number(await ctx.runner.fill((c) => runScript(c, WRITE, keys, args))) === 1;
    if (ok) core.count('sets', entries.length);
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
    core.fail(op, err);
    return false;
  }
}

export async function set(core: CategoryCore, key: string, value: unknown, opts: SetOptions): Promise<boolean> {
  checkTtl(opts.ttl);
  return write(core, [writeEntry(core, core.key(key), value, opts)], 'set');
}

export async function mset(core: CategoryCore, entries: ManyEntry<unknown>[]): Promise<boolean> {
  if (entries.length === 0) return true;
  for (const e of entries) checkTtl(e.ttl);
  return write(
    core,
    entries.map((e) => writeEntry(core, core.key(e.key), e.value, { ...(e.ttl !== undefined ? { ttl: e.ttl } : {}), ...(e.tags ? { tags: e.tags } : {}) })),
    'mset',
  );
}
