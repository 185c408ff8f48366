import { CacheConfigError, isCluster, redisTopologyFromEnv, type RedisClient, type RedisTopology } from '@aicache/cache';
import type { StateReplication } from './state-calls.js';

type Env = Record<string, string | undefined>;

/** Suffixes of the variables that choose a Sentinel set or a Cluster, after `REDIS_` (cache) or `REDIS_STATE_` (state). */
const TOPOLOGY_SUFFIXES = ['SENTINELS', 'SENTINEL_NAME', 'SENTINEL_USERNAME', 'SENTINEL_PASSWORD', 'CLUSTER_NODES'] as const;

/** Where the cache connection and the state connection go. */
export interface RedisTopologies {
  cache: RedisTopology;
  state: RedisTopology;
  /** True when no REDIS_STATE_* variable is set: the state connection goes where the cache one goes. */
  stateFollowsCache: boolean;
}

const value = (env: Env, name: string): string | undefined => {
  const v = env[name]?.trim();
  return v ? v : undefined;
};

/** The REDIS_STATE_* variables that give the state connection a place of its own. */
function stateVariables(env: Env): string[] {
  return ['REDIS_STATE_URL', ...TOPOLOGY_SUFFIXES.map((s) => `REDIS_STATE_${s}`)].filter((n) => value(env, n) !== undefined);
}

function refuseOrphanSentinelCredentials(env: Env, prefix: string): void {
  if (value(env, `${prefix}SENTINELS`)) return;
  for (const name of [`${prefix}SENTINEL_USERNAME`, `${prefix}SENTINEL_PASSWORD`]) {
    if (value(env, name)) throw new CacheConfigError(name, `${name} is set but ${prefix}SENTINELS is not: Sentinel credentials need a Sentinel set`);
  }
}

/**
 * The cache's topology from REDIS_SENTINELS/REDIS_SENTINEL_NAME/REDIS_CLUSTER_NODES (none: one server), and the state's
 * from the same variables under REDIS_STATE_ when any of them (or REDIS_STATE_URL) is set, else the cache's, as
 * REDIS_STATE_URL falls back to the cache's address. Throws CacheConfigError naming the variables of a combination
 * that cannot mean one thing. `env` is the raw env: a REDIS_HOST or REDIS_PORT written beside Cluster nodes is refused,
 * so pass the schema's defaults only where they were really set.
 */
export function redisTopologies(env: Env): RedisTopologies {
  refuseOrphanSentinelCredentials(env, 'REDIS_');
  refuseOrphanSentinelCredentials(env, 'REDIS_STATE_');
  const cache = redisTopologyFromEnv(env, 'REDIS_');
  if (stateVariables(env).length === 0) return { cache, state: cache, stateFollowsCache: true };
  return { cache, state: redisTopologyFromEnv(env, 'REDIS_STATE_'), stateFollowsCache: false };
}

/**
 * The same topologies from a validated config, whose REDIS_HOST and REDIS_PORT always hold a value (the schema's
 * defaults): only the variables that choose a mode, and the URLs, are read. loadConfig has already refused the bad
 * combinations on the raw env.
 */
export function redisTopologiesOfConfig(config: object): RedisTopologies {
  const env: Env = {};
  const source = config as Record<string, unknown>;
  for (const prefix of ['REDIS_', 'REDIS_STATE_']) {
    for (const suffix of [...TOPOLOGY_SUFFIXES, 'URL']) {
      const v = source[`${prefix}${suffix}`];
      if (typeof v === 'string') env[`${prefix}${suffix}`] = v;
    }
  }
  return redisTopologies(env);
}

/**
 * What REDIS_DB_<SERVICE> may hold when a connection goes to a Cluster (only DB 0 there): unset, 0 or the service's
 * default (as docker-compose and .env.example write it), which are then ignored; any other index means the operator
 * keeps something apart by DB, which a Cluster cannot do, so it is refused.
 */
export function clusterDbIssue(env: Env, topologies: RedisTopologies, dbVariable: string, defaultDb: number | undefined): string | undefined {
  const clustered = [topologies.cache.mode === 'cluster' ? 'REDIS_CLUSTER_NODES' : undefined, topologies.state.mode === 'cluster' && !topologies.stateFollowsCache ? 'REDIS_STATE_CLUSTER_NODES' : undefined].filter(
    (n): n is string => n !== undefined,
  );
  const raw = value(env, dbVariable);
  if (clustered.length === 0 || raw === undefined) return undefined;
  const db = Number(raw);
  if (!Number.isInteger(db) || db === 0 || db === defaultDb) return undefined;
  const service = dbVariable.replace(/^REDIS_DB_/, '').toLowerCase().replace(/_/g, '-');
  return (
    `${dbVariable}=${raw} asks for DB ${raw}, but ${clustered.join(' and ')} ${clustered.length > 1 ? 'are' : 'is'} set and a Redis Cluster has only DB 0: ` +
    `leave ${dbVariable} unset (or 0); on a Cluster the '${service}:' key prefix keeps the services apart`
  );
}

/**
 * The key prefix of a service's state, ending in ':'. On a Cluster the service name is a hash tag, so every key of the
 * service's state is in one slot and its scripts and transactions (which touch a document and the index, an agent
 * and its conversations together) work there: a service's state lives on one shard (failover, not spreading). On one
 * server or a Sentinel set the names stay as they always were, so data written before keeps being found.
 */
export function stateKeyPrefix(service: string, client: RedisClient): string {
  return isCluster(client) ? `state:{${service}}:` : `state:${service}:`;
}

/**
 * The WAIT after each state write that STATE_WAIT_REPLICAS asks for (undefined for 0), aimed at the master of the
 * service's state slot.
 */
export function stateReplication(
  config: { STATE_WAIT_REPLICAS: number; STATE_WAIT_TIMEOUT_MS: number },
  service: string,
  client: RedisClient,
  logger?: { warn(obj: object, msg?: string): void },
): StateReplication | undefined {
  if (config.STATE_WAIT_REPLICAS <= 0) return undefined;
  return {
    replicas: config.STATE_WAIT_REPLICAS,
    timeoutMs: config.STATE_WAIT_TIMEOUT_MS,
    slotKey: `${stateKeyPrefix(service, client)}ready`,
    ...(logger ? { logger } : {}),
  };
}
