import { createRedisClient, fieldsOf, isCluster, parseInfo, redisOptionsFromEnv, type RedisClient, type RedisTopology } from '@aicache/cache';
import type { ClusterOptions, Redis, RedisOptions } from 'ioredis';
import type { BaseConfig } from './config.js';
import { redactUrl } from './logger.js';
import { redisTopologiesOfConfig } from './topology.js';

export interface KitLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export type StateRedisConfig = Pick<
  BaseConfig,
  | 'REDIS_URL'
  | 'REDIS_HOST'
  | 'REDIS_PORT'
  | 'REDIS_USERNAME'
  | 'REDIS_PASSWORD'
  | 'REDIS_TLS_CA_FILE'
  | 'REDIS_STATE_URL'
  | 'SERVICE_NAME'
  | 'REDIS_SOCKET_CONNECT_TIMEOUT'
  | 'REDIS_SOCKET_TIMEOUT'
> &
  Partial<
    Pick<
      BaseConfig,
      | 'REDIS_SENTINELS'
      | 'REDIS_SENTINEL_NAME'
      | 'REDIS_SENTINEL_USERNAME'
      | 'REDIS_SENTINEL_PASSWORD'
      | 'REDIS_CLUSTER_NODES'
      | 'REDIS_STATE_SENTINELS'
      | 'REDIS_STATE_SENTINEL_NAME'
      | 'REDIS_STATE_SENTINEL_USERNAME'
      | 'REDIS_STATE_SENTINEL_PASSWORD'
      | 'REDIS_STATE_CLUSTER_NODES'
    >
  >;

export interface StateRedisOptions {
  /** DB index for state (the service's DB); a /N path in the URL is ignored, as for the cache connection. */
  db?: number;
  logger?: KitLogger;
  /** Extra ioredis options over the kit's (each node's, on a Cluster). */
  redis?: RedisOptions;
  /** Extra Cluster options over the kit's. */
  cluster?: ClusterOptions;
}

/**
 * How the state client on a Cluster rides out a failover: a command that meets a dead master, a CLUSTERDOWN or a
 * TRYAGAIN is retried every 200 ms, up to 50 redirections (about 10 s: a failover with cluster-node-timeout 5000 took
 * 6.6-8.9 s here), while StateCalls bounds what a request waits (STATE_TIMEOUT_MS, then 503). The default 100 ms x 16
 * gave up after 1.6 s with "Too many Cluster redirections".
 */
export const STATE_CLUSTER_OPTIONS: ClusterOptions = {
  retryDelayOnFailover: 200,
  retryDelayOnClusterDown: 200,
  retryDelayOnTryAgain: 200,
  maxRedirections: 50,
  slotsRefreshTimeout: 2000,
};

function describeTarget(topology: RedisTopology, url: string | undefined, config: StateRedisConfig): string {
  if (topology.mode === 'cluster') return `cluster ${topology.nodes.map((n) => `${n.host}:${n.port}`).join(',')}`;
  if (topology.mode === 'sentinel') return `sentinel ${topology.name} via ${topology.sentinels.map((n) => `${n.host}:${n.port}`).join(',')}`;
  return url ? redactUrl(url) : `${config.REDIS_HOST}:${config.REDIS_PORT}`;
}

/**
 * The ioredis client for state (agent memory, conversations, document index): one server (REDIS_STATE_URL, else the
 * cache connection settings), a Sentinel set (REDIS_STATE_SENTINELS) or a Cluster (REDIS_STATE_CLUSTER_NODES), and
 * with no REDIS_STATE_* set, wherever the cache connection goes. Unlike the cache client it waits for a reconnect or a
 * failover (offline queue, retries per command) instead of failing fast, because a lost state write is a lost user fact.
 */
export function createStateRedis(config: StateRedisConfig, opts: StateRedisOptions = {}): RedisClient {
  const { state: topology, stateFollowsCache } = redisTopologiesOfConfig(config);
  const url = stateFollowsCache ? config.REDIS_URL : config.REDIS_STATE_URL;
  // The same parsing as the cache connection (URL or host/port, credentials, TLS with a CA), on its own DB.
  const connection = redisOptionsFromEnv(
    {
      REDIS_URL: url,
      REDIS_HOST: config.REDIS_HOST,
      REDIS_PORT: String(config.REDIS_PORT),
      REDIS_USERNAME: config.REDIS_USERNAME,
      REDIS_PASSWORD: config.REDIS_PASSWORD,
      REDIS_TLS_CA_FILE: config.REDIS_TLS_CA_FILE,
      REDIS_SOCKET_CONNECT_TIMEOUT: config.REDIS_SOCKET_CONNECT_TIMEOUT?.toString(),
      REDIS_SOCKET_TIMEOUT: config.REDIS_SOCKET_TIMEOUT?.toString(),
      STATE_DB: opts.db === undefined ? undefined : String(opts.db),
    },
    'STATE_DB',
    0,
  );
  const client = createRedisClient(
    topology,
    {
      ...connection,
      maxRetriesPerRequest: 3,
      commandTimeout: 2000,
      connectTimeout: connection.connectTimeout ?? 5000,
      enableOfflineQueue: true,
      retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
      connectionName: `${config.SERVICE_NAME ?? 'service'}:state`,
      // Through Sentinel: reconnect to the new primary when the Sentinels announce a switch, not only when the old one drops.
      ...(topology.mode === 'sentinel' ? { failoverDetector: true } : {}),
      ...opts.redis,
    },
    { ...STATE_CLUSTER_OPTIONS, ...opts.cluster },
  );
  const target = describeTarget(topology, url, config);
  // Log once per outage, not once per reconnect attempt. Without a listener a Cluster client's errors ("Too many
  // Cluster redirections" while the cluster is down) are uncaught exceptions.
  let down = false;
  const onError = (err: Error) => {
    if (down) return;
    down = true;
    opts.logger?.error({ err: { message: redactUrl(err.message) }, redis: target }, 'state Redis connection error');
  };
  client.on('error', onError);
  if (isCluster(client)) client.on('node error', onError);
  client.on('ready', () => {
    if (down) opts.logger?.info({ redis: target }, 'state Redis reconnected');
    down = false;
  });
  return client;
}

export interface StateDurability {
  /** Keys can be evicted under memory pressure (any policy other than noeviction; agent memory has TTLs, so volatile-* counts). */
  evicting: boolean;
  /** AOF or RDB snapshots are on. */
  persistent: boolean;
  /** maxmemory-policy, or null when it could not be read. */
  policy: string | null;
  appendonly: boolean | null;
  /** RDB save rules ('' = off), or null when they could not be read. */
  save: string | null;
  /** On a Cluster, each master's own verdict (the fields above are the least durable master's). */
  masters?: Array<{ node: string } & Omit<StateDurability, 'masters'>>;
}

export interface DurabilityOptions {
  requireDurable?: boolean;
  logger?: KitLogger;
}

export class StateDurabilityError extends Error {
  readonly code = 'STATE_NOT_DURABLE';
  constructor(message: string, readonly durability: StateDurability) {
    super(message);
    this.name = 'StateDurabilityError';
  }
}

function pairs(reply: unknown): Record<string, string> {
  if (Array.isArray(reply)) return fieldsOf(reply);
  const out: Record<string, string> = {};
  if (reply instanceof Map) {
    for (const [k, v] of reply) out[String(k)] = String(v);
  } else if (reply && typeof reply === 'object') {
    for (const [k, v] of Object.entries(reply)) out[k] = String(v);
  }
  return out;
}

async function readSettings(client: Redis): Promise<Pick<StateDurability, 'policy' | 'appendonly' | 'save'>> {
  try {
    const conf: Record<string, string> = {};
    for (const name of ['maxmemory-policy', 'appendonly', 'save']) Object.assign(conf, pairs(await client.call('CONFIG', 'GET', name)));
    if (conf['maxmemory-policy'] !== undefined) {
      return { policy: conf['maxmemory-policy'], appendonly: conf.appendonly === undefined ? null : conf.appendonly === 'yes', save: conf.save ?? null };
    }
  } catch {
    // CONFIG renamed or denied (managed Redis): INFO still tells policy and AOF, not the save rules.
  }
  const info = parseInfo(String(await client.info('memory')) + '\n' + String(await client.info('persistence')));
  return {
    policy: info.maxmemory_policy ?? null,
    appendonly: info.aof_enabled === undefined ? null : info.aof_enabled === '1',
    save: null,
  };
}

function verdict(settings: Pick<StateDurability, 'policy' | 'appendonly' | 'save'>): { result: Omit<StateDurability, 'masters'>; problems: string[] } {
  const evicting = settings.policy !== 'noeviction';
  const persistent = settings.appendonly === true || (settings.save !== null && settings.save.trim() !== '');
  const problems: string[] = [];
  if (settings.policy === null) problems.push('maxmemory-policy could not be read (CONFIG and INFO denied)');
  else if (evicting) problems.push(`maxmemory-policy is '${settings.policy}', so Redis may evict state keys under memory pressure`);
  if (!persistent) {
    problems.push(
      settings.appendonly === null && settings.save === null
        ? 'persistence could not be verified'
        : 'neither AOF (appendonly) nor RDB snapshots (save) are on, so a restart loses all state',
    );
  }
  return { result: { evicting, persistent, ...settings }, problems };
}

/** A Cluster client's masters, once it knows the slots (waiting up to `waitMs` for that). */
async function clusterMasters(client: RedisClient & { nodes(role: 'master'): Redis[] }, waitMs = 10_000): Promise<Redis[]> {
  if (client.status !== 'ready') {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`the Cluster was not ready within ${waitMs} ms`)), waitMs);
      const done = (err?: Error) => {
        clearTimeout(timer);
        client.off('ready', onReady);
        if (err) reject(err);
        else resolve();
      };
      const onReady = () => done();
      client.once('ready', onReady);
    });
  }
  const masters = client.nodes('master');
  if (masters.length === 0) throw new Error('the Cluster client knows no master');
  return masters;
}

/**
 * Reads maxmemory-policy, appendonly and save from the state Redis and says loudly when state can be lost:
 * an evicting policy (anything but noeviction) or no persistence at all. On a Cluster every master is read and every
 * one must be durable (a replica promoted by a failover is not checked until it is a master). With requireDurable it
 * throws.
 */
export async function checkStateDurability(client: RedisClient, opts: DurabilityOptions = {}): Promise<StateDurability> {
  let result: StateDurability;
  let problems: string[];
  if (isCluster(client)) {
    const masters = await Promise.all(
      (await clusterMasters(client)).map(async (node) => ({ node: `${node.options.host}:${node.options.port}`, ...verdict(await readSettings(node)) })),
    );
    const worst = masters.find((m) => m.problems.length > 0) ?? masters[0]!;
    result = { ...worst.result, masters: masters.map((m) => ({ node: m.node, ...m.result })) };
    problems = masters.flatMap((m) => m.problems.map((p) => `master ${m.node}: ${p}`));
  } else {
    ({ result, problems } = verdict(await readSettings(client)));
  }

  if (problems.length === 0) {
    opts.logger?.info({ durability: result }, 'state Redis is durable');
    return result;
  }
  const message =
    `State Redis is not durable: ${problems.join('; ')}. ` +
    'Fix: run the state Redis with maxmemory-policy noeviction and appendonly yes ' +
    '(every master of a Cluster), or point REDIS_STATE_URL, REDIS_STATE_SENTINELS or REDIS_STATE_CLUSTER_NODES at one that has them.';
  if (opts.requireDurable) throw new StateDurabilityError(`${message} STATE_REQUIRE_DURABLE=true refuses to start.`, result);
  opts.logger?.warn({ durability: result }, `${message} Set STATE_REQUIRE_DURABLE=true to refuse to start instead.`);
  return result;
}
