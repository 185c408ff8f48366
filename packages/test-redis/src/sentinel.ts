import type { Redis } from 'ioredis';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { askNode, isAlive as alive, parseInfo, sleep, type RedisNodeAddress } from './nodes.js';
import { startRedisServer, type RedisServer } from './server.js';

export interface RedisSentinelOptions {
  /** Replicas of the primary. Default 1. */
  replicas?: number;
  /** Sentinel processes. Default 3 (quorum 2). */
  sentinels?: number;
  /** The name the Sentinels know the primary by. Default 'aicache'. */
  name?: string;
  /** down-after-milliseconds: how long the primary must be unreachable before a failover. Default 1000. */
  downAfterMs?: number;
  /** failover-timeout. Default 5000. */
  failoverTimeoutMs?: number;
  /** Extra redis-server arguments for the data servers. */
  args?: string[];
  /** AOF on the data servers with this fsync policy. */
  appendfsync?: 'always' | 'everysec' | 'no';
}

export interface RedisSentinelSet {
  readonly name: string;
  /** The data servers; servers[0] was the primary at start. */
  readonly servers: RedisServer[];
  readonly sentinels: RedisServer[];
  readonly sentinelNodes: RedisNodeAddress[];
  /** `127.0.0.1:p1,...`, as REDIS_SENTINELS takes it. */
  readonly sentinelsEnv: string;
  /** The primary now, as the Sentinels say. */
  primary(): Promise<RedisServer>;
  /**
   * Waits until the Sentinels agree on a live primary, know each other and every live replica, and every live
   * replica has finished its sync (a failover before that has no replica to promote).
   */
  waitSynced(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts a primary, its replicas and a set of Sentinels watching it, on free ports, and returns once every
 * replica has synced and the Sentinels know each other (so a failover can be voted at once).
 */
export async function startRedisSentinel(opts: RedisSentinelOptions = {}): Promise<RedisSentinelSet> {
  const name = opts.name ?? 'aicache';
  const root = mkdtempSync(join(tmpdir(), 'aicache-sentinel-'));
  const dataArgs = (extra: string[]) => ({
    dir: mkdtempSync(join(root, 'data-')),
    ...(opts.appendfsync ? { appendfsync: opts.appendfsync } : {}),
    args: [...extra, ...(opts.args ?? [])],
  });
  const servers: RedisServer[] = [];
  const sentinels: RedisServer[] = [];
  const stopAll = async () => {
    await Promise.all([...sentinels, ...servers].map((s) => s.stop().catch(() => undefined)));
    rmSync(root, { recursive: true, force: true });
  };
  const sentinelCount = opts.sentinels ?? 3;
  const quorum = Math.floor(sentinelCount / 2) + 1;
  try {
    const first = await startRedisServer(dataArgs([]));
    servers.push(first);
    for (let i = 0; i < (opts.replicas ?? 1); i++) {
      servers.push(await startRedisServer(dataArgs(['--replicaof', first.host, String(first.port)])));
    }
    for (let i = 0; i < sentinelCount; i++) {
      const s = await startRedisServer({ sentinel: true, dir: mkdtempSync(join(root, 'sentinel-')) });
      sentinels.push(s);
      await askNode(s, undefined, async (c) => {
        await c.call('SENTINEL', 'MONITOR', name, first.host, String(first.port), String(quorum));
        await c.call('SENTINEL', 'SET', name, 'down-after-milliseconds', String(opts.downAfterMs ?? 1000));
        await c.call('SENTINEL', 'SET', name, 'failover-timeout', String(opts.failoverTimeoutMs ?? 5000));
      });
    }
  } catch (err) {
    await stopAll();
    throw err;
  }

  const byPort = new Map(servers.map((s) => [s.port, s]));
  const askSentinels = async <T>(fn: (c: Redis) => Promise<T>): Promise<T> => {
    let last: unknown;
    for (const s of sentinels.filter(alive)) {
      try {
        return await askNode(s, undefined, fn);
      } catch (err) {
        last = err;
      }
    }
    throw new Error(`no Sentinel answered: ${String(last)}`);
  };

  const set: RedisSentinelSet = {
    name,
    servers,
    sentinels,
    sentinelNodes: sentinels.map((s) => ({ host: s.host, port: s.port })),
    sentinelsEnv: sentinels.map((s) => `${s.host}:${s.port}`).join(','),
    async primary() {
      const addr = (await askSentinels((c) => c.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name))) as [string, string] | null;
      const server = addr ? byPort.get(Number(addr[1])) : undefined;
      if (!server) throw new Error(`the Sentinels name no known primary for ${name}`);
      return server;
    },
    async waitSynced(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      let why = '';
      while (Date.now() < deadline) {
        why = await notSynced();
        if (!why) return;
        await sleep(100);
      }
      throw new Error(`Sentinel set not settled after ${timeoutMs} ms: ${why}`);
    },
    stop: stopAll,
  };

  async function notSynced(): Promise<string> {
    let primary: RedisServer;
    try {
      primary = await set.primary();
    } catch (err) {
      return (err as Error).message;
    }
    if (!alive(primary)) return `primary ${primary.port} is down`;
    const role = await askNode(primary, undefined, async (c) => parseInfo(await c.info('replication'))).catch(() => undefined);
    if (role?.role !== 'master') return `primary ${primary.port} is not a master yet`;
    const liveReplicas = servers.filter((s) => s !== primary && alive(s));
    for (const r of liveReplicas) {
      const info = await askNode(r, undefined, async (c) => parseInfo(await c.info('replication'))).catch(() => undefined);
      if (!info || info.role !== 'slave' || Number(info.master_port) !== primary.port || info.master_link_status !== 'up' || info.master_sync_in_progress !== '0') {
        return `replica ${r.port} not synced with ${primary.port}`;
      }
    }
    for (const s of sentinels.filter(alive)) {
      const [peers, replicas, master] = await askNode(s, undefined, async (c) => [
        (await c.call('SENTINEL', 'SENTINELS', name)) as unknown[],
        (await c.call('SENTINEL', 'REPLICAS', name)) as string[][],
        (await c.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name)) as [string, string],
      ]).catch(() => [[], [], ['', '0']] as [unknown[], string[][], [string, string]]);
      if (Number(master[1]) !== primary.port) return `Sentinel ${s.port} still names ${master[1]} as primary`;
      if (peers.length < sentinels.filter(alive).length - 1) return `Sentinel ${s.port} knows ${peers.length} other Sentinels`;
      const known = (replicas as string[][]).filter((fields) => {
        const f = new Map<string, string>();
        for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i]!, fields[i + 1]!);
        return !(f.get('flags') ?? '').includes('down') && liveReplicas.some((r) => r.port === Number(f.get('port')));
      });
      if (known.length < liveReplicas.length) return `Sentinel ${s.port} knows ${known.length} of ${liveReplicas.length} live replicas`;
    }
    return '';
  }

  try {
    await set.waitSynced();
  } catch (err) {
    await stopAll();
    throw err;
  }
  return set;
}
