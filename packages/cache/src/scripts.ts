import { createHash } from 'node:crypto';
import type { Cluster } from 'ioredis';
import { groupByNode } from './cluster.js';
import type { RedisClient } from './connection.js';

export interface LuaScript {
  readonly lua: string;
  readonly sha: string;
}

function script(lua: string): LuaScript {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') };
}

/**
 * Writes entries unless
 *  - the server clock is past the client's deadline (ARGV[1], server epoch ms; 0 = none): a write the client
 *    already reported as timed out must never land later over a newer value or an invalidation;
 *  - or (ARGV[2] == '1') the category's invalidation generation (field ARGV[3] of hash KEYS[1]) is no longer
 *    ARGV[4]: a loader that started before an invalidation must not store what it read before it.
 * KEYS: generation hash, then per entry its key and its tag-set keys. ARGV: deadline, check, generation field,
 * expected generation, L1 channel ('' = none), L1 message, then per entry: payload, px, tag count. Tag sets are
 * kept alive at least as long as the entries they list. The L1 message is published in the same script, so other
 * replicas hear of exactly the writes that landed; with PCALL, since a publish refused (ACL) must not undo a write.
 */
export const WRITE = script(`
local deadline = tonumber(ARGV[1])
if deadline > 0 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if now > deadline then return 0 end
end
if ARGV[2] == '1' and (redis.call('HGET', KEYS[1], ARGV[3]) or '') ~= ARGV[4] then return 0 end
local ki = 2
local ai = 7
while ai <= #ARGV do
  local key = KEYS[ki]
  local px = tonumber(ARGV[ai + 1])
  local ntags = tonumber(ARGV[ai + 2])
  redis.call('SET', key, ARGV[ai], 'PX', px)
  for i = 1, ntags do
    local tk = KEYS[ki + i]
    redis.call('SADD', tk, key)
    if redis.call('PTTL', tk) < px then redis.call('PEXPIRE', tk, px) end
  end
  ki = ki + 1 + ntags
  ai = ai + 3
end
if ARGV[5] ~= '' then redis.pcall('PUBLISH', ARGV[5], ARGV[6]) end
return 1
`);

/**
 * KEYS: entry, lease, generation hash. ARGV: token, lease px, mode, generation field, fresh-after (epoch ms, 0 = any).
 * Answers {code, generation, value?}.
 * Mode 'miss': code 1 with the value when a live entry exists, else takes the lease (2, with a stale value if any) or
 * reports it busy (0). An entry with a header (tag byte >= 0x80, see serialization.ts) whose logical expiry (float64 LE
 * at byte 2) is not after ARGV[5] is stale for this caller (its grace is over, or it allows none): not a hit.
 * Mode 'refresh': takes the lease (2, with the current value if any) or reports it busy (0).
 */
export const ACQUIRE = script(`
local v = redis.call('GET', KEYS[1])
local g = redis.call('HGET', KEYS[3], ARGV[4]) or ''
if v and ARGV[3] == 'miss' then
  local after = tonumber(ARGV[5])
  if after <= 0 or string.len(v) < 13 or string.byte(v, 1) < 128 or struct.unpack('<d', v, 2) > after then
    return {1, g, v}
  end
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', tonumber(ARGV[2])) then
  if v then return {2, g, v} end
  return {2, g}
end
return {0, g}
`);

/**
 * Adds one batch of stats deltas to the service-wide hash, once: KEYS[2] keeps the sequence number of the last batch
 * this replica added, so a batch sent again (its first sending timed out but landed) is not added twice.
 * KEYS: stats hash, the replica's marker. ARGV: batch sequence, marker px, then field/delta pairs.
 */
export const FLUSH = script(`
if tonumber(redis.call('GET', KEYS[2]) or '0') >= tonumber(ARGV[1]) then return 0 end
for i = 3, #ARGV, 2 do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('SET', KEYS[2], ARGV[1], 'PX', tonumber(ARGV[2]))
return 1
`);

/** Compare-and-delete: releases the lease only if we still hold it. */
export const RELEASE = script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`);

type Arg = string | Buffer | number;

/** EVALSHA, falling back to EVAL once when the server does not know the script (first use, restart). */
/** ioredis has these at run time; its 6.x typings leave them out. */
interface ScriptCommands {
  evalshaBuffer(sha: string, numKeys: number, ...keysAndArgs: Arg[]): Promise<unknown>;
  evalBuffer(lua: string, numKeys: number, ...keysAndArgs: Arg[]): Promise<unknown>;
}

export async function runScript(redis: RedisClient, s: LuaScript, keys: Arg[], args: Arg[]): Promise<unknown> {
  const client = redis as unknown as ScriptCommands;
  // Buffer replies: entries are binary. Named methods, not callBuffer: ioredis 6 cannot auto-pipeline a
  // generic call (it throws from a timer), and a client handed to the cache may auto-pipeline.
  try {
    return await client.evalshaBuffer(s.sha, keys.length, ...keys, ...args);
  } catch (err) {
    if (!String((err as Error)?.message).startsWith('NOSCRIPT')) throw err;
    return client.evalBuffer(s.lua, keys.length, ...keys, ...args);
  }
}

/** One script call: its keys (all in one slot on a Cluster) and arguments. */
export interface ScriptCall {
  keys: Arg[];
  args: Arg[];
}

const isNoScript = (err: unknown): boolean => String((err as Error)?.message).startsWith('NOSCRIPT');

/** A Cluster redirection: the slot is served elsewhere now, or is being moved. */
export const isRedirection = (err: unknown): boolean => /^(MOVED|ASK|TRYAGAIN) /.test(String((err as Error)?.message));

/**
 * Many calls of one script on a Cluster: one pipeline per node (EVALSHA, then EVAL for the calls that met
 * NOSCRIPT), so a batch costs a round trip per node involved, not one per call. Answers each call's reply or error.
 */
export async function runScriptPerNode(client: Cluster, s: LuaScript, calls: ScriptCall[]): Promise<Array<{ ok: true; value: unknown } | { ok: false; error: unknown }>> {
  const out = new Array<{ ok: true; value: unknown } | { ok: false; error: unknown }>(calls.length);
  const indexes = calls.map((_, i) => i);
  await Promise.all(
    groupByNode(client, indexes, (i) => String((calls[i] as ScriptCall).keys[0])).map(async (group) => {
      let todo = group;
      for (const useSha of [true, false]) {
        const pipe = client.pipeline() as unknown as ScriptCommands & { exec(): Promise<Array<[Error | null, unknown]> | null> };
        for (const i of todo) {
          const { keys, args } = calls[i] as ScriptCall;
          if (useSha) void pipe.evalshaBuffer(s.sha, keys.length, ...keys, ...args);
          else void pipe.evalBuffer(s.lua, keys.length, ...keys, ...args);
        }
        const res = (await pipe.exec()) ?? [];
        const retry: number[] = [];
        const redirected: number[] = [];
        todo.forEach((i, j) => {
          const [err, value] = res[j] ?? [new Error('empty pipeline reply'), undefined];
          if (err && useSha && isNoScript(err)) retry.push(i);
          else if (err && isRedirection(err)) redirected.push(i);
          else out[i] = err ? { ok: false, error: err } : { ok: true, value };
        });
        // A slot that moved (or is moving) since the client last read the slot map: on its own, the call follows
        // the redirection (and the client refreshes its map).
        await Promise.all(
          redirected.map(async (i) => {
            const { keys, args } = calls[i] as ScriptCall;
            try {
              out[i] = { ok: true, value: await runScript(client, s, keys, args) };
            } catch (error) {
              out[i] = { ok: false, error };
            }
          }),
        );
        if (retry.length === 0) break;
        todo = retry;
      }
    }),
  );
  return out;
}
