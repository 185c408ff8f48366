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

/**
 * SCAN MATCH in pages of SCAN_COUNT and UNLINK each page without waiting for it before the next SCAN, so Redis
 * is never blocked (no KEYS, no FLUSHDB). Answers how many keys were removed. Stops early (answering what was
 * removed so far) if Redis fails.
 */
export async function scanUnlink(
  runner: RedisRunner,
  match: string,
  opts: { exclude?: string[]; excludePrefix?: string } = {},
): Promise<{ removed: number; error?: unknown }> {
  const exclude = opts.exclude?.length ? new Set(opts.exclude) : undefined;
  const prefix = opts.excludePrefix;
  const kept = (k: Buffer): boolean => (exclude?.has(k.toString()) ?? false) || (prefix !== undefined && k.toString().startsWith(prefix));
  const unlinks: Promise<number>[] = [];
  let cursor = '0';
  let error: unknown;
  try {
    do {
      const [next, keys] = await runner.run((c) => c.scanBuffer(cursor, 'MATCH', match, 'COUNT', SCAN_COUNT), bulkTimeout(runner));
      cursor = next.toString();
      const batch = exclude || prefix !== undefined ? keys.filter((k) => !kept(k)) : keys;
      if (batch.length > 0) unlinks.push(runner.run((c) => c.unlink(...batch), bulkTimeout(runner)));
    } while (cursor !== '0');
  } catch (err) {
    error = err;
  }
  return settle(unlinks, error);
}

/**
 * INCR the invalidation generations, before the keys are removed: a loader write checked against the old
 * generation is then dropped whether it arrives before or after the removal.
 */
export async function bumpGenerations(runner: RedisRunner, hashKey: string, fields: string[]): Promise<void> {
  await runner.run(async (c) => {
    const pipe = c.pipeline();
    for (const f of fields) pipe.hincrby(hashKey, f, 1);
    const res = await pipe.exec();
    const failed = res?.find(([err]) => err);
    if (!res || failed) throw failed?.[0] ?? new Error('generation pipeline failed');
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
