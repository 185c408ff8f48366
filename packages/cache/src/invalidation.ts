import type { Cluster, Redis } from 'ioredis';
import { groupByNode, mastersOf, slotFingerprint, slotInMotion } from './cluster.js';
import { isCluster } from './connection.js';
import { InvalidPatternError } from './errors.js';
import type { RedisRunner } from './runner.js';

export const SCAN_COUNT = 250;
export const MAX_PATTERN_LENGTH = 512;

/**
 * Per-call bound for the batched calls of an invalidation (SCAN pages, UNLINK of a page of keys): these are admin
 * operations, not the request path, and a page timing out would leave the invalidation half done.
 */
export function bulkTimeout(runner: RedisRunner): number {
  return Math.max(runner.timeoutMs, 2000);
}

/**
 * A user glob is only ever appended to the literal `<service>:<category>:` prefix (neither part can hold a glob
 * character), so it cannot match another category or service. Here we refuse what is certainly a mistake.
 */
export function validateGlob(glob: unknown): asserts glob is string {
  if (typeof glob !== 'string' || glob.length === 0) throw new InvalidPatternError('Pattern must be a non-empty string');
  if (glob.length > MAX_PATTERN_LENGTH) throw new InvalidPatternError(`Pattern is longer than ${MAX_PATTERN_LENGTH} characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(glob)) throw new InvalidPatternError('Pattern must not contain control characters');
  if (/(^|[^\\])(\\\\)*\\$/.test(glob)) throw new InvalidPatternError('Pattern must not end with a lone backslash');
}

/** Keys an unlink by pattern leaves alone: exact names, and names under these prefixes. */
export interface ScanExclusions {
  exclude?: string[];
  excludePrefixes?: string[];
}

function keeper(opts: ScanExclusions): ((k: Buffer) => boolean) | undefined {
  const exclude = opts.exclude?.length ? new Set(opts.exclude) : undefined;
  const prefixes = opts.excludePrefixes?.length ? opts.excludePrefixes : undefined;
  if (!exclude && !prefixes) return undefined;
  return (k: Buffer): boolean => {
    const s = k.toString();
    return (exclude?.has(s) ?? false) || (prefixes?.some((p) => s.startsWith(p)) ?? false);
  };
}

/**
 * SCAN MATCH in pages of SCAN_COUNT and UNLINK each page without waiting for it before the next SCAN, so Redis
 * is never blocked (no KEYS, no FLUSHDB). Answers how many keys were removed. Stops early (answering what was
 * removed so far) if Redis fails. On a Cluster: every master, see scanUnlinkCluster.
 */
export async function scanUnlink(runner: RedisRunner, match: string, opts: ScanExclusions = {}): Promise<{ removed: number; error?: unknown }> {
  if (isCluster(runner.client)) return scanUnlinkCluster(runner, runner.client, match, opts);
  const kept = keeper(opts);
  const unlinks: Promise<number>[] = [];
  let cursor = '0';
  let error: unknown;
  try {
    do {
      const [next, keys] = await runner.run((c) => (c as Redis).scanBuffer(cursor, 'MATCH', match, 'COUNT', SCAN_COUNT), bulkTimeout(runner));
      cursor = next.toString();
      const batch = kept ? keys.filter((k) => !kept(k)) : keys;
      if (batch.length > 0) unlinks.push(runner.run((c) => c.unlink(...batch), bulkTimeout(runner)));
    } while (cursor !== '0');
  } catch (err) {
    error = err;
  }
  return settle(unlinks, error);
}

/** Passes over every master before an unlink by pattern gives up on a cluster whose slots keep moving. */
export const MAX_SCAN_PASSES = 5;

/**
 * scanUnlink on a Cluster: SCANs every master, and UNLINKs each page on the node that listed it (one key per
 * UNLINK, pipelined: a page holds keys of many slots). A slot migrating meanwhile could hide keys from the pass
 * (moved from a node not scanned yet to one already scanned), so the slot map is read from every master before
 * and after the pass; while it changed, a slot is in motion, or an UNLINK met a redirection, the pass runs again
 * (at most MAX_SCAN_PASSES). Only keys that match are ever removed, so a second pass cannot remove more than the
 * pattern names.
 */
async function scanUnlinkCluster(runner: RedisRunner, client: Cluster, match: string, opts: ScanExclusions): Promise<{ removed: number; error?: unknown }> {
  const kept = keeper(opts);
  const call = <T>(op: () => Promise<T>): Promise<T> => runner.run(op, bulkTimeout(runner));
  let removed = 0;
  try {
    for (let pass = 1; ; pass++) {
      const masters = mastersOf(client);
      const before = await slotFingerprint(masters, call);
      let redirected = false;
      const results = await Promise.all(
        masters.map(async (node) => {
          const unlinks: Promise<{ n: number; redirected: boolean }>[] = [];
          let cursor = '0';
          do {
            const [next, keys] = await call(() => node.scanBuffer(cursor, 'MATCH', match, 'COUNT', SCAN_COUNT));
            cursor = next.toString();
            const batch = kept ? keys.filter((k) => !kept(k)) : keys;
            if (batch.length > 0) unlinks.push(call(() => unlinkOneByOne(node, batch)));
          } while (cursor !== '0');
          return Promise.all(unlinks);
        }),
      );
      for (const r of results.flat()) {
        removed += r.n;
        redirected ||= r.redirected;
      }
      const after = await slotFingerprint(mastersOf(client), call);
      if (!redirected && before === after && !slotInMotion(after)) return { removed };
      if (pass >= MAX_SCAN_PASSES) return { removed, error: new Error(`slots kept moving during ${pass} passes of the SCAN for ${match}`) };
      await new Promise((r) => setTimeout(r, 100 * pass));
    }
  } catch (err) {
    return { removed, error: err };
  }
}

/** One UNLINK per key in one pipeline to this node; a MOVED/ASK reply (the key's slot left it) is reported, not thrown. */
async function unlinkOneByOne(node: Redis, keys: Buffer[]): Promise<{ n: number; redirected: boolean }> {
  const pipe = node.pipeline();
  for (const k of keys) pipe.unlink(k);
  const res = (await pipe.exec()) ?? [];
  let n = 0;
  let redirected = false;
  for (const [err, v] of res) {
    if (!err) n += Number(v);
    else if (/^(MOVED|ASK|TRYAGAIN)/.test(err.message)) redirected = true;
    else throw err;
  }
  return { n, redirected };
}

/**
 * Every key matching `match` on every master (one server: the one), for counting. Not for removal: see scanUnlink.
 */
export async function scanEach(runner: RedisRunner, match: string, onPage: (keys: string[]) => void): Promise<void> {
  const client = runner.client;
  const nodes: Array<Redis | Cluster> = isCluster(client) ? mastersOf(client) : [client];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await runner.run(() => (node as Redis).scan(cursor, 'MATCH', match, 'COUNT', 1000));
      cursor = next;
      onPage(keys);
    } while (cursor !== '0');
  }
}

/**
 * INCR the invalidation generations, before the keys are removed: a loader write checked against the old
 * generation is then dropped whether it arrives before or after the removal. `hashKeys`: every generation hash
 * concerned (one per bucket on a Cluster: one pipeline per node).
 */
export async function bumpGenerations(runner: RedisRunner, hashKeys: string[], fields: string[]): Promise<void> {
  await runner.run(async (c) => {
    const groups = isCluster(c) ? groupByNode(c, hashKeys, (k) => k) : [hashKeys];
    await Promise.all(
      groups.map(async (keys) => {
        const pipe = c.pipeline();
        const todo = keys.flatMap((k) => fields.map((f) => [k, f] as const));
        for (const [k, f] of todo) pipe.hincrby(k, f, 1);
        const res = await pipe.exec();
        if (!res) throw new Error('generation pipeline failed');
        // A bucket whose slot is moving answers ASK/MOVED/TRYAGAIN in a pipeline: sent again on its own, the
        // client follows the redirection.
        await Promise.all(
          res.map(async ([err], i) => {
            if (!err) return;
            if (!isCluster(c) || !/^(MOVED|ASK|TRYAGAIN)/.test(err.message)) throw err;
            const [k, f] = todo[i] as readonly [string, string];
            await c.hincrby(k, f, 1);
          }),
        );
      }),
    );
  }, bulkTimeout(runner));
}

/** Removes every key listed in a tag set (SSCAN pages + UNLINK), then the set itself. Answers entries removed. */
export async function unlinkTagMembers(runner: RedisRunner, setKey: string): Promise<{ removed: number; error?: unknown }> {
  const unlinks: Promise<number>[] = [];
  let cursor = '0';
  let error: unknown;
  try {
    do {
      const [next, members] = await runner.run((c) => c.sscanBuffer(setKey, cursor, 'COUNT', SCAN_COUNT), bulkTimeout(runner));
      cursor = next.toString();
      if (members.length > 0) unlinks.push(runner.run((c) => c.unlink(...members), bulkTimeout(runner)));
    } while (cursor !== '0');
  } catch (err) {
    error = err;
  }
  const result = await settle(unlinks, error);
  if (result.error === undefined) {
    try {
      await runner.run((c) => c.unlink(setKey), bulkTimeout(runner));
    } catch (err) {
      result.error = err;
    }
  }
  return result;
}

async function settle(unlinks: Promise<number>[], error: unknown): Promise<{ removed: number; error?: unknown }> {
  let removed = 0;
  for (const r of await Promise.allSettled(unlinks)) {
    if (r.status === 'fulfilled') removed += Number(r.value);
    else error ??= r.reason;
  }
  return error === undefined ? { removed } : { removed, error };
}
