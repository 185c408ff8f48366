import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { askNode, isAlive as alive, parseInfo, sleep } from './nodes.js';
import { startRedisServer, type RedisServer } from './server.js';
import type { RedisNodeAddress } from './nodes.js';

const run = promisify(execFile);
const CLI = process.env.REDIS_CLI_BIN ?? 'redis-cli';

export interface RedisClusterOptions {
  /** Default 3. */
  masters?: number;
  /** Default 1. */
  replicasPerMaster?: number;
  /** cluster-node-timeout: how long a master must be unreachable before its replica takes over. Default 5000. */
  nodeTimeoutMs?: number;
  /** Extra redis-server arguments for every node. */
  args?: string[];
  /** requirepass (and masterauth, so replicas can sync) on every node. */
  password?: string;
  /** AOF on every node with this fsync policy. */
  appendfsync?: 'always' | 'everysec' | 'no';
}

export interface RedisClusterHandle {
  /** Every node process, in start order (the first `masters` were made masters at creation). */
  readonly servers: RedisServer[];
  /** Seed addresses for `new Cluster(nodes)`. */
  readonly nodes: RedisNodeAddress[];
  /** `127.0.0.1:p1,127.0.0.1:p2,...`, as REDIS_CLUSTER_NODES takes it. */
  readonly nodesEnv: string;
  /** The masters now, as the cluster sees them (failed nodes left out). */
  masters(): Promise<RedisServer[]>;
  /** The replicas now. */
  replicas(): Promise<RedisServer[]>;
  /** The node that serves `key`'s slot now. */
  masterOf(key: string): Promise<RedisServer>;
  /**
   * Waits until every live node says cluster_state:ok with all 16384 slots served, and every live replica has
   * finished its sync with its master (a replica that never synced refuses to fail over).
   */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** Stops every node and removes their data dirs. */
  stop(): Promise<void>;
}

interface NodeLine {
  id: string;
  port: number;
  flags: string[];
  masterId: string;
  slots: Array<[number, number]>;
}

function parseClusterNodes(text: string): NodeLine[] {
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const parts = line.trim().split(' ');
      // <id> <ip:port@cport[,hostname]> <flags> <master> <ping-sent> <pong-recv> <config-epoch> <link-state> <slot> ...
      const port = Number(parts[1]!.split('@')[0]!.split(':').pop());
      const slots: Array<[number, number]> = [];
      for (const s of parts.slice(8)) {
        if (s.startsWith('[')) continue; // a slot being imported or migrated
        const [a, b] = s.split('-').map(Number);
        slots.push([a!, b ?? a!]);
      }
      return { id: parts[0]!, port, flags: parts[2]!.split(','), masterId: parts[3]!, slots };
    });
}

/**
 * Starts a local Redis Cluster (default 3 masters, 1 replica each) on free ports with redis-server and
 * `redis-cli --cluster create`, and returns once it is healthy and every replica has synced.
 */
export async function startRedisCluster(opts: RedisClusterOptions = {}): Promise<RedisClusterHandle> {
  const masters = opts.masters ?? 3;
  const replicasPerMaster = opts.replicasPerMaster ?? 1;
  const count = masters * (1 + replicasPerMaster);
  const root = mkdtempSync(join(tmpdir(), 'aicache-cluster-'));
  const password = opts.password;
  const servers: RedisServer[] = [];
  try {
    for (let i = 0; i < count; i++) {
      servers.push(
        await startRedisServer({
          dir: mkdtempSync(join(root, `node${i}-`)),
          ...(password ? { password } : {}),
          ...(opts.appendfsync ? { appendfsync: opts.appendfsync } : {}),
          args: [
            '--cluster-enabled', 'yes',
            '--cluster-config-file', 'nodes.conf',
            '--cluster-node-timeout', String(opts.nodeTimeoutMs ?? 5000),
            ...(password ? ['--masterauth', password] : []),
            ...(opts.args ?? []),
          ],
        }),
      );
    }
    await run(
      CLI,
      [
        ...(password ? ['--no-auth-warning', '-a', password] : []),
        '--cluster', 'create',
        ...servers.map((s) => `${s.host}:${s.port}`),
        '--cluster-replicas', String(replicasPerMaster),
        '--cluster-yes',
      ],
      { timeout: 30_000 },
    );
  } catch (err) {
    await Promise.all(servers.map((s) => s.stop().catch(() => undefined)));
    rmSync(root, { recursive: true, force: true });
    throw err;
  }

  const byPort = new Map(servers.map((s) => [s.port, s]));
  const topology = async (): Promise<NodeLine[]> => {
    let last: unknown;
    for (const s of servers.filter(alive)) {
      try {
        return parseClusterNodes(String(await askNode(s, password, (c) => c.call('CLUSTER', 'NODES'))));
      } catch (err) {
        last = err;
      }
    }
    throw new Error(`no cluster node answered: ${String(last)}`);
  };
  const live = (n: NodeLine): boolean => !n.flags.includes('fail') && !n.flags.includes('fail?') && !n.flags.includes('noaddr');

  const handle: RedisClusterHandle = {
    servers,
    nodes: servers.map((s) => ({ host: s.host, port: s.port })),
    nodesEnv: servers.map((s) => `${s.host}:${s.port}`).join(','),
    async masters() {
      return (await topology()).filter((n) => n.flags.includes('master') && live(n)).map((n) => byPort.get(n.port)!).filter(Boolean);
    },
    async replicas() {
      return (await topology()).filter((n) => n.flags.includes('slave') && live(n)).map((n) => byPort.get(n.port)!).filter(Boolean);
    },
    async masterOf(key) {
      const first = servers.find(alive)!;
      const slot = Number(await askNode(first, password, (c) => c.call('CLUSTER', 'KEYSLOT', key)));
      const owner = (await topology()).find((n) => n.flags.includes('master') && live(n) && n.slots.some(([a, b]) => slot >= a && slot <= b));
      if (!owner) throw new Error(`no live master serves slot ${slot}`);
      return byPort.get(owner.port)!;
    },
    async waitHealthy(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      let why = '';
      while (Date.now() < deadline) {
        why = await unhealthy();
        if (!why) return;
        await sleep(100);
      }
      throw new Error(`cluster not healthy after ${timeoutMs} ms: ${why}`);
    },
    async stop() {
      await Promise.all(servers.map((s) => s.stop().catch(() => undefined)));
      rmSync(root, { recursive: true, force: true });
    },
  };

  /** '' when healthy, else what is not yet so. */
  async function unhealthy(): Promise<string> {
    for (const s of servers.filter(alive)) {
      try {
        const [cluster, replication] = await askNode(s, password, async (c) => [
          parseInfo(String(await c.call('CLUSTER', 'INFO'))),
          parseInfo(await c.info('replication')),
        ]);
        if (cluster.cluster_state !== 'ok' || cluster.cluster_slots_ok !== '16384') return `node ${s.port}: cluster_state ${cluster.cluster_state}, slots ok ${cluster.cluster_slots_ok}`;
        if (replication.role === 'slave' && (replication.master_link_status !== 'up' || replication.master_sync_in_progress !== '0')) {
          return `replica ${s.port} not synced (link ${replication.master_link_status})`;
        }
      } catch (err) {
        return `node ${s.port}: ${(err as Error).message}`;
      }
    }
    // Every live node must agree there are `masters` live masters with a replica each, where replicas are live.
    const nodes = await topology();
    const liveMasters = nodes.filter((n) => n.flags.includes('master') && live(n) && n.slots.length > 0);
    if (liveMasters.length !== masters) return `${liveMasters.length} masters with slots, want ${masters}`;
    return '';
  }

  try {
    await handle.waitHealthy();
  } catch (err) {
    await handle.stop();
    throw err;
  }
  return handle;
}
