import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { startRedisCluster, startRedisSentinel, startRedisServer, type RedisClusterHandle, type RedisServer } from '@aicache/test-redis';
import { slotOf } from '../src/cluster.js';
import type { CacheOptions, RedisClient } from '../src/index.js';

/**
 * One Redis deployment the shared suites run against: a private server, a primary + replica behind 3 Sentinels
 * (the cache's client is then a plain Redis that asks the Sentinels for the primary), or a private 3-master Cluster. Each
 * answers the options a Cache needs to reach it, a raw client for looking behind the cache's back, and the server
 * process holding a key (to pause or kill it).
 */
export interface Mode {
  readonly name: 'single' | 'sentinel' | 'cluster';
  readonly servers: RedisServer[];
  cacheOptions(): Pick<CacheOptions, 'connection' | 'topology'>;
  raw(): RedisClient;
  /** Every key matching, on every master. */
  scan(match: string): Promise<string[]>;
  /** The data nodes to read INFO from: the server, or every master. */
  masters(): Promise<Redis[]>;
  serverOf(key: string): Promise<RedisServer>;
  stop(): Promise<void>;
}

const quiet = <T extends RedisClient>(c: T): T => {
  c.on('error', () => undefined);
  return c;
};

async function scanNode(node: Redis, match: string): Promise<string[]> {
  const out = new Set<string>();
  let cursor = '0';
  do {
    const [next, keys] = await node.scan(cursor, 'MATCH', match, 'COUNT', 1000);
    cursor = next;
    for (const k of keys) out.add(k);
  } while (cursor !== '0');
  return [...out];
}

export async function startMode(name: Mode['name']): Promise<Mode> {
  if (name === 'single') {
    const server = await startRedisServer();
    const conn = { host: server.host, port: server.port };
    const raws: Redis[] = [];
    return {
      name,
      servers: [server],
      cacheOptions: () => ({ connection: { ...conn } }),
      raw: () => {
        const r = quiet(new Redis({ ...conn, maxRetriesPerRequest: 1 }));
        raws.push(r);
        return r;
      },
      scan: async (match) => {
        const r = quiet(new Redis({ ...conn }));
        try {
          return (await scanNode(r, match)).sort();
        } finally {
          r.disconnect();
        }
      },
      masters: async () => {
        const r = quiet(new Redis({ ...conn }));
        raws.push(r);
        return [r];
      },
      serverOf: () => Promise.resolve(server),
      stop: async () => {
        for (const r of raws) r.disconnect();
        await server.stop();
      },
    };
  }
  if (name === 'sentinel') {
    const set = await startRedisSentinel();
    const raws: Redis[] = [];
    const sentinelOf = (extra: RedisOptions = {}): Redis => {
      const r = quiet(new Redis({ sentinels: set.sentinelNodes, name: set.name, ...extra }));
      raws.push(r);
      return r;
    };
    return {
      name,
      servers: set.servers,
      cacheOptions: () => ({ topology: { mode: 'sentinel', sentinels: set.sentinelNodes, name: set.name } }),
      raw: () => sentinelOf({ maxRetriesPerRequest: 1 }),
      scan: async (match) => (await scanNode(sentinelOf(), match)).sort(),
      masters: () => Promise.resolve([sentinelOf()]),
      serverOf: () => set.primary(),
      stop: async () => {
        for (const r of raws) r.disconnect();
        await set.stop();
      },
    };
  }
  const cluster: RedisClusterHandle = await startRedisCluster();
  const raws: Cluster[] = [];
  const raw = (): Cluster => {
    const c = quiet(new Cluster(cluster.nodes, { redisOptions: { maxRetriesPerRequest: 1 } }));
    raws.push(c);
    return c;
  };
  const looker = raw();
  const masterNodes = async (): Promise<Redis[]> => {
    if (looker.status !== 'ready') await new Promise((r) => looker.once('ready', r));
    return looker.nodes('master');
  };
  return {
    name,
    servers: cluster.servers,
    cacheOptions: () => ({ topology: { mode: 'cluster', nodes: cluster.nodes } }),
    raw,
    scan: async (match) => [...new Set((await Promise.all((await masterNodes()).map((m) => scanNode(m, match)))).flat())].sort(),
    masters: masterNodes,
    serverOf: async (key) => {
      await masterNodes();
      const owner = looker.slots[slotOf(key)]?.[0] ?? '';
      const server = cluster.servers.find((s) => `${s.host}:${s.port}` === owner);
      if (!server) throw new Error(`no server holds ${key} (${owner})`);
      return server;
    },
    stop: async () => {
      for (const c of raws) c.disconnect();
      await cluster.stop();
    },
  };
}
