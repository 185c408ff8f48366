import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { CacheConfigError } from './errors.js';

/**
 * Closes a client without hanging while Redis is away: QUIT, bounded by `quitWaitMs`, only when connected (sent
 * while reconnecting, QUIT would wait in the offline queue), then a disconnect of whatever is left.
 */
export async function quitOrDisconnect(client: RedisClient, quitWaitMs = 1000): Promise<void> {
  if (client.status === 'end') return;
  if (client.status === 'ready') {
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, quitWaitMs)));
    await Promise.race([client.quit().then(() => undefined, () => undefined), bound]);
    clearTimeout(timer);
  }
  if ((client.status as string) !== 'end') client.disconnect();
}

/**
 * The server clock's offset from this process's, ms, from a TIME reply received between local times t0 and t1
 * (the midpoint of the round trip is taken as the moment Redis read its clock).
 */
export function serverClockOffset(time: ArrayLike<string | number>, t0: number, t1: number): number {
  return Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000) - (t0 + t1) / 2;
}

/** A client the cache and the state stores work with: one server (also through Sentinel) or a Redis Cluster. */
export type RedisClient = Redis | Cluster;

export interface RedisNode {
  host: string;
  port: number;
}

/**
 * Where Redis is: one server (host/port/URL in the RedisOptions), a primary found through Sentinel, or a Cluster.
 * Credentials, TLS and timeouts come from the RedisOptions in every mode.
 */
export type RedisTopology =
  | { mode: 'single' }
  | { mode: 'sentinel'; sentinels: RedisNode[]; name: string; sentinelUsername?: string; sentinelPassword?: string }
  | { mode: 'cluster'; nodes: RedisNode[] };

type Env = Record<string, string | undefined>;

/** `host:port,host:port` (IPv6 as `[::1]:port`); throws CacheConfigError naming the variable. */
export function parseNodes(variable: string, raw: string): RedisNode[] {
  const nodes: RedisNode[] = [];
  for (const part of raw.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\[[^\]]+\]|[^:[\]]+):(\d{1,5})$/.exec(part);
    const port = m ? Number(m[2]) : 0;
    if (!m || port < 1 || port > 65535) {
      throw new CacheConfigError(variable, `${variable} must be a comma-separated list of host:port, got ${JSON.stringify(part)}`);
    }
    nodes.push({ host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port });
  }
  if (nodes.length === 0) throw new CacheConfigError(variable, `${variable} is set but names no host:port`);
  return nodes;
}

const set = (env: Env, name: string): string | undefined => {
  const v = env[name]?.trim();
  return v ? v : undefined;
};

/**
 * The topology from env, with variables named `<prefix>SENTINELS`, `<prefix>SENTINEL_NAME`,
 * `<prefix>SENTINEL_USERNAME`, `<prefix>SENTINEL_PASSWORD` and `<prefix>CLUSTER_NODES` (prefix `REDIS_` for the
 * cache connection, `REDIS_STATE_` for the state one). None set: one server. Combinations that cannot mean one
 * thing refuse with a message naming the variables: Sentinel and Cluster together, a Sentinel set without the
 * name of its primary (or the reverse), and a one-server address (`<prefix>URL`, `<prefix>HOST`, `<prefix>PORT`)
 * beside a Sentinel set or Cluster nodes.
 */
export function redisTopologyFromEnv(env: Env, prefix = 'REDIS_'): RedisTopology {
  const v = (suffix: string) => `${prefix}${suffix}`;
  const sentinels = set(env, v('SENTINELS'));
  const name = set(env, v('SENTINEL_NAME'));
  const clusterNodes = set(env, v('CLUSTER_NODES'));
  const single = ['URL', 'HOST', 'PORT'].map(v).filter((n) => set(env, n) !== undefined);
  if (sentinels && clusterNodes) {
    throw new CacheConfigError(v('CLUSTER_NODES'), `${v('SENTINELS')} and ${v('CLUSTER_NODES')} are both set: choose Sentinel or Cluster`);
  }
  if ((sentinels || clusterNodes) && single.length > 0) {
    const multi = sentinels ? v('SENTINELS') : v('CLUSTER_NODES');
    throw new CacheConfigError(
      single[0]!,
      `${single.join(', ')} name${single.length === 1 ? 's' : ''} one server, but ${multi} is set: leave ${single.length === 1 ? 'it' : 'them'} unset ` +
        `(credentials go in ${prefix === 'REDIS_' ? 'REDIS_USERNAME/REDIS_PASSWORD' : 'the same variables as for one server'})`,
    );
  }
  if (sentinels && !name) throw new CacheConfigError(v('SENTINEL_NAME'), `${v('SENTINELS')} is set but ${v('SENTINEL_NAME')} (the name of the primary the Sentinels watch) is not`);
  if (name && !sentinels) throw new CacheConfigError(v('SENTINELS'), `${v('SENTINEL_NAME')} is set but ${v('SENTINELS')} (host:port of the Sentinels) is not`);
  if (sentinels && name) {
    const sentinelUsername = set(env, v('SENTINEL_USERNAME'));
    const sentinelPassword = set(env, v('SENTINEL_PASSWORD'));
    return {
      mode: 'sentinel',
      sentinels: parseNodes(v('SENTINELS'), sentinels),
      name,
      ...(sentinelUsername ? { sentinelUsername } : {}),
      ...(sentinelPassword ? { sentinelPassword } : {}),
    };
  }
  if (clusterNodes) return { mode: 'cluster', nodes: parseNodes(v('CLUSTER_NODES'), clusterNodes) };
  return { mode: 'single' };
}

/**
 * A client for the topology. `options` are one server's settings: in Sentinel mode they apply to the primary (its
 * host and port come from the Sentinels); in Cluster mode they apply to every node, without host, port or db
 * (a Cluster has only DB 0: callers that keep services apart by DB index must say so), and the client's own
 * options are `cluster`, with the offline queue and reconnect strategy taken from `options`.
 */
export function createRedisClient(topology: RedisTopology, options: RedisOptions = {}, cluster: ClusterOptions = {}): RedisClient {
  if (topology.mode === 'single') return new Redis(options);
  if (topology.mode === 'sentinel') {
    const { host: _h, port: _p, ...rest } = options;
    return new Redis({
      ...rest,
      sentinels: topology.sentinels,
      name: topology.name,
      ...(topology.sentinelUsername ? { sentinelUsername: topology.sentinelUsername } : {}),
      ...(topology.sentinelPassword ? { sentinelPassword: topology.sentinelPassword } : {}),
      ...(options.tls ? { enableTLSForSentinelMode: true, sentinelTLS: options.tls } : {}),
      // Without a reconnect strategy of its own, a client whose Sentinels are all away keeps asking at once.
      sentinelRetryStrategy: (times: number) => Math.min(100 * times, 1000),
    });
  }
  const { host: _h, port: _p, db: _db, retryStrategy, enableOfflineQueue, ...nodeOptions } = options;
  return new Cluster(topology.nodes, {
    ...(enableOfflineQueue !== undefined ? { enableOfflineQueue } : {}),
    ...(retryStrategy ? { clusterRetryStrategy: (times: number) => retryStrategy(times) ?? null } : {}),
    ...cluster,
    redisOptions: { ...nodeOptions, ...cluster.redisOptions },
  });
}

/**
 * The keys matching `match`, by SCAN in pages of `count`, on every master of a Cluster (keys under one hash tag sit on
 * one master, so the others answer nothing) or on the one server.
 */
export async function* scanEveryMaster(redis: RedisClient, match: string, count = 200): AsyncGenerator<string> {
  const nodes = isCluster(redis) ? redis.nodes('master') : [redis];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', match, 'COUNT', count);
      cursor = next;
      yield* keys;
    } while (cursor !== '0');
  }
}

/** True for a Cluster client (ioredis sets `isCluster` on both kinds). */
export function isCluster(client: RedisClient): client is Cluster {
  return client.isCluster === true;
}
