import { groupBy } from '../cluster.js';
import { isCluster } from '../connection.js';
import type { L1Entry } from '../l1.js';
import { encode, type EntryMeta } from '../serialization.js';
import { runScript, runScriptPerNode, WRITE, type ScriptCall } from '../scripts.js';
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
 * One WRITE script call for every entry (on a Cluster one per bucket, pipelined per node): dropped by Redis past
 * the write deadline, or when `generation` (read before a loader ran) is no longer the category's. L1 keeps what
 * landed and forgets what may not have. True when every entry landed.
 */
export async function write(core: CategoryCore, entries: WriteEntry[], op: string, generation?: string): Promise<boolean> {
  const { ctx, l1 } = core;
  const sync = l1 ? ctx.sync : undefined;
  const token = l1?.begin() ?? 0;
  const started = Date.now();
  const deadline = ctx.runner.writeDeadline();
  // On one server a single group; on a Cluster one per bucket, each with its bucket's generation hash.
  const groups = core.cluster ? groupBy(entries, (e) => ctx.layout.tagOf(e.key)) : [entries];
  const calls: ScriptCall[] = groups.map((group) => {
    const first = group[0] as WriteEntry;
    const keys: string[] = [core.genKeyOf(first.key)];
    const args: Array<string | Buffer | number> = [
      deadline,
      generation === undefined ? '0' : '1',
      core.genField,
      generation ?? '',
      sync ? sync.channel : '',
      sync ? sync.message(core.name, group.map((e) => e.key)) : '',
    ];
    for (const e of group) {
      keys.push(e.key, ...e.tags.map((t) => ctx.layout.tagKeyOf(t, e.key)));
      args.push(e.payload, e.px, e.tags.length);
    }
    return { keys, args };
  });
  try {
    const landed: boolean[] = await ctx.runner.fill(async (c) => {
      if (!isCluster(c)) {
        const call = calls[0] as ScriptCall;
        return [Number(await runScript(c, WRITE, call.keys, call.args)) === 1];
      }
      const replies = await runScriptPerNode(c, WRITE, calls);
      const failed = replies.find((r) => !r.ok);
      // One error fails the write as on one server; L1 then forgets every entry, landed or not.
      if (failed && !failed.ok) throw failed.error;
      return replies.map((r) => r.ok && Number(r.value) === 1);
    });
    let sets = 0;
    const elapsed = Date.now() - started;
    groups.forEach((group, g) => {
      const ok = landed[g] === true;
      if (ok) sets += group.length;
      if (!l1) return;
      for (const e of group) {
        if (ok) l1.store(e.key, token, e.l1, e.payload.length + e.key.length, e.logicalPx - elapsed);
        else l1.evict([e.key]);
      }
    });
    core.count('sets', sets);
    return sets === entries.length;
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
