import type { Cluster } from 'ioredis';
import { groupBy, groupByNode, slotOf } from '../cluster.js';
import { isCluster } from '../connection.js';
import { decodeMeta, HEADER_BYTES } from '../serialization.js';
import { isRedirection } from '../scripts.js';
import type { CategoryCore } from './core.js';
import { countL1Hit, fillL1, fromL1 } from './l1.js';

/** A plain GET is enough (no sliding TTL to push, no L1 to fill): the hit path's read, one command, no pipeline. */
export function plainRead(core: CategoryCore): boolean {
  return !core.def.sliding && core.l1?.enabled !== true;
}

/**
 * The read when a plain GET is not enough (see plainRead): for sliding categories GET + PEXPIRE, while L1 is on
 * GET + PTTL (how long L1 may keep it), in one round trip. Answers the value and the PTTL (undefined when not asked).
 */
export function readEntry(core: CategoryCore, full: string): Promise<[Buffer | null, number | undefined]> {
  const withTtl = core.l1?.enabled === true;
  const sliding = core.def.sliding;
  return core.ctx.runner.run(async (c): Promise<[Buffer | null, number | undefined]> => {
    const started = Date.now();
    const pipe = c.pipeline().getBuffer(full);
    if (sliding) pipe.pexpire(full, core.ttlMs());
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

export async function get<V>(core: CategoryCore, key: string): Promise<V | undefined> {
  const full = core.key(key);
  const hit = fromL1(core, full);
  if (hit) return hit.value as V;
  const l1 = core.l1;
  const token = l1?.begin() ?? 0;
  let buf: Buffer | null;
  let pttl: number | undefined;
  try {
    if (plainRead(core)) buf = await core.ctx.runner.getBuffer(full);
    else [buf, pttl] = await readEntry(core, full);
  } catch (err) {
    core.fail('get', err);
    return undefined;
  }
  const entry = core.fresh(buf);
  core.count(entry ? 'hits' : 'misses');
  if (entry && buf) fillL1(core, full, token, entry, buf.length, pttl);
  return entry?.value as V | undefined;
}

export async function has(core: CategoryCore, key: string): Promise<boolean> {
  const full = core.key(key);
  if (core.l1?.get(full)) return true;
  try {
    // Only the header: enough to tell a live entry from a missing or logically expired one.
    const head = await core.ctx.runner.run((c) => c.getrangeBuffer(full, 0, HEADER_BYTES - 1));
    if (!head || head.length === 0) return false;
    const meta = decodeMeta(head);
    return !(meta && !core.def.sliding && Date.now() >= meta.expiresAt);
  } catch (err) {
    core.fail('has', err);
    return false;
  }
}

export async function mget<V>(core: CategoryCore, keys: string[]): Promise<Array<V | undefined>> {
  if (keys.length === 0) return [];
  const fulls = keys.map((k) => core.key(k));
  const out: Array<V | undefined> = new Array<V | undefined>(keys.length).fill(undefined);
  const l1 = core.l1;
  // Indexes of the keys to read from Redis.
  let todo: number[];
  if (l1) {
    todo = [];
    let l1Hits = 0;
    for (let i = 0; i < fulls.length; i++) {
      const hit = l1.get(fulls[i] as string);
      if (hit) {
        out[i] = hit.value as V;
        l1Hits++;
      } else {
        todo.push(i);
      }
    }
    countL1Hit(core, l1Hits);
    if (todo.length === 0) return out;
  } else {
    todo = fulls.map((_, i) => i);
  }
  const wanted = todo.map((i) => fulls[i] as string);
  const token = l1?.begin() ?? 0;
  const withTtl = l1?.enabled === true;
  const sliding = core.def.sliding;
  let bufs: Array<Buffer | null>;
  let ttls: number[] | undefined;
  try {
    [bufs, ttls] = await core.ctx.runner.run(async (c): Promise<[Array<Buffer | null>, number[] | undefined]> => {
      if (isCluster(c)) return readAcrossSlots(core, c, wanted, withTtl);
      if (!sliding && !withTtl) return [await c.mgetBuffer(...wanted), undefined];
      const started = Date.now();
      const pipe = c.pipeline().mgetBuffer(...wanted);
      for (const k of wanted) {
        if (sliding) pipe.pexpire(k, core.ttlMs());
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
    core.fail('mget', err);
    return out;
  }
  let hits = 0;
  bufs.forEach((b, j) => {
    const e = core.fresh(b);
    if (!e) return;
    hits++;
    const i = todo[j] as number;
    out[i] = e.value as V;
    if (b) fillL1(core, fulls[i] as string, token, e, b.length, ttls?.[j]);
  });
  core.count('hits', hits);
  core.count('misses', wanted.length - hits);
  return out;
}

/**
 * mget on a Cluster: the keys are grouped by slot (one MGET each, with the PTTL or PEXPIRE of each key as on one
 * server), and the slots by the node serving them: one pipeline, so one round trip, per node involved.
 */
async function readAcrossSlots(core: CategoryCore, c: Cluster, wanted: string[], withTtl: boolean): Promise<[Array<Buffer | null>, number[] | undefined]> {
  const sliding = core.def.sliding;
  const bufs = new Array<Buffer | null>(wanted.length).fill(null);
  const ttls = withTtl ? new Array<number>(wanted.length).fill(-2) : undefined;
  const slots = groupBy(
    wanted.map((_, j) => j),
    (j) => slotOf(wanted[j] as string),
  );
  const started = Date.now();
  await Promise.all(
    groupByNode(c, slots, (g) => wanted[g[0] as number] as string).map(async (node) => {
      const pipe = c.pipeline();
      for (const g of node) {
        pipe.mgetBuffer(...g.map((j) => wanted[j] as string));
        if (!sliding && !withTtl) continue;
        for (const j of g) {
          if (sliding) pipe.pexpire(wanted[j] as string, core.ttlMs());
          else pipe.pttl(wanted[j] as string);
        }
      }
      const res = (await pipe.exec()) ?? [];
      const elapsed = Date.now() - started;
      let r = 0;
      const redirected: number[][] = [];
      for (const g of node) {
        const [err, values] = res[r++] ?? [new Error('empty pipeline reply')];
        const perKey = sliding || withTtl ? g.length : 0;
        if (err && isRedirection(err)) {
          redirected.push(g);
          r += perKey;
          continue;
        }
        if (err) throw err;
        g.forEach((j, n) => (bufs[j] = (values as Array<Buffer | null>)[n] ?? null));
        for (const j of perKey ? g : []) {
          const [ttlErr, ttl] = res[r++] ?? [new Error('empty pipeline reply')];
          if (!ttls) continue;
          const pttl = ttlErr ? -2 : Number(ttl);
          ttls[j] = pttl > 0 ? Math.max(1, pttl - elapsed) : pttl;
        }
      }
      // A slot that moved or is moving since the client read the slot map: a GET per key follows its redirection
      // (an MGET over a slot half moved answers TRYAGAIN). No TTL then: L1 is not filled from these, and sliding
      // TTLs are pushed at the next read.
      await Promise.all(
        redirected.flat().map(async (j) => {
          bufs[j] = await c.getBuffer(wanted[j] as string);
        }),
      );
    }),
  );
  return [bufs, ttls];
}
