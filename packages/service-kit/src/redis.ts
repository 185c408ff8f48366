import { isCluster, quitOrDisconnect, type RedisClient } from '@aicache/cache';
import type { FastifyInstance } from 'fastify';
import { registerCache, type ServiceCacheConfig, type ServiceCacheOptions } from './cache.js';
import type { BaseConfig } from './config.js';
import { checkStateDurability, createStateRedis, StateDurabilityError, type StateRedisConfig } from './state-redis.js';
import { redisTopologiesOfConfig, stateKeyPrefix } from './topology.js';

/**
 * A service's Redis connections by name, as @fastify/redis names its instances (`app.redis.<namespace>`).
 * @fastify/redis itself is not registered: it holds boot until a connection is ready and fails boot on a reply
 * error (a wrong password), and QUITs on close even while Redis is away (QUIT then waits in the offline queue).
 * This stack must boot and serve from origin with the cache Redis down or refusing it, and close promptly.
 */
export interface RedisConnections {
  /** The cache connection: owned and closed by the cache (`app.cache.client`); a Cluster client on a Cluster. */
  cache: RedisClient;
  /**
   * The state connection (documents, agents, memory), for the services that keep state: one server, a primary found
   * through Sentinel, or a Cluster (then every key the service's state writes together must share a hash tag: see
   * stateKeyPrefix).
   */
  state?: RedisClient;
}

declare module 'fastify' {
  interface FastifyInstance {
    redis: RedisConnections;
  }
}

export interface StateConnectionOptions {
  /** The service's DB index. */
  db: number;
  /** An existing client, left open on close (tests). */
  client?: RedisClient;
  /** What the readiness check says when the state Redis does not answer. */
  downDetail?: string;
}

export interface RedisOptions<C extends string> {
  cache: ServiceCacheOptions<C>;
  /** Omitted by services that keep no state. */
  state?: StateConnectionOptions;
}

type Config = ServiceCacheConfig & StateRedisConfig & Pick<BaseConfig, 'STATE_REQUIRE_DURABLE'>;

/** Readiness checks, by name, for the two connections. */
export const READINESS = { cache: 'redis', state: 'state' } as const;

/**
 * How long boot waits for the durability verdict of a state Redis that does not answer, when durability is
 * advisory. The same 2 s the cache plugin waits for its connection at boot: a healthy Redis answers in
 * milliseconds, a dead one does not hold boot longer than the cache would.
 */
export const DURABILITY_BOOT_WAIT_MS = 2000;

/**
 * Durability of the state Redis, checked while the service registers so that a refusal fails buildApp before
 * anything listens. With STATE_REQUIRE_DURABLE the check is awaited whatever it takes (an unreachable Redis cannot
 * be shown durable, so boot is refused); otherwise boot waits at most DURABILITY_BOOT_WAIT_MS and the check
 * finishes in the background, logging its verdict.
 */
async function checkDurabilityAtBoot(app: FastifyInstance, client: RedisClient, requireDurable: boolean): Promise<void> {
  const check = checkStateDurability(client, { requireDurable, logger: app.log });
  if (requireDurable) {
    await check;
    return;
  }
  const settled = check.then(
    () => undefined,
    (err: unknown) => {
      if (!(err instanceof StateDurabilityError)) {
        app.log.warn({ err: { message: (err as Error).message } }, 'state Redis durability could not be checked');
      }
    },
  );
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([settled, new Promise<void>((resolve) => (timer = setTimeout(resolve, DURABILITY_BOOT_WAIT_MS)))]);
  clearTimeout(timer);
}

/**
 * Registers a service's Redis connections the same way in every service and decorates `app.redis` with them:
 * `cache` (the cache plugin, its admin routes and the 'redis' readiness check, which only degrades) and, for
 * services that keep state, `state` (a client that waits out short outages, the 'state' readiness check, which
 * makes the service not ready, the durability check, and a close that never hangs).
 */
export async function registerRedis<C extends string>(
  app: FastifyInstance,
  config: Config,
  opts: RedisOptions<C> & { state: StateConnectionOptions },
): Promise<Required<RedisConnections>>;
export async function registerRedis<C extends string>(app: FastifyInstance, config: Config, opts: RedisOptions<C>): Promise<RedisConnections>;
export async function registerRedis<C extends string>(app: FastifyInstance, config: Config, opts: RedisOptions<C>): Promise<RedisConnections> {
  const topologies = redisTopologiesOfConfig(config);
  if (topologies.cache.mode === 'cluster' || (opts.state && topologies.state.mode === 'cluster')) {
    // loadConfig refused any other index; the one left is the default, which a Cluster (DB 0 only) cannot honour.
    app.log.info(
      { variable: opts.cache.dbVariable },
      `${opts.cache.dbVariable} is not used on a Redis Cluster (only DB 0 there): the '${opts.cache.service}:' key prefix keeps the services apart`,
    );
  }
  await registerCache(app, config, opts.cache);
  const connections: RedisConnections = { cache: app.cache.client };
  app.decorate('redis', connections);
  if (!opts.state) return connections;

  const own = !opts.state.client;
  const state = opts.state.client ?? createStateRedis({ ...config, SERVICE_NAME: config.SERVICE_NAME ?? opts.cache.service }, { db: opts.state.db, logger: app.log });
  connections.state = state;
  if (own) app.addHook('onClose', () => quitOrDisconnect(state));

  const downDetail = opts.state.downDetail ?? 'state Redis does not answer';
  // On a Cluster a PING goes to any node; the state lives in one slot, so ask the master serving it.
  const probeKey = `${stateKeyPrefix(opts.cache.service, state)}ready`;
  app.addReadinessCheck(READINESS.state, async () => {
    // Not connected: say so at once rather than queue a PING behind the reconnect.
    const probe = () => (isCluster(state) ? state.exists(probeKey).then(() => true) : state.ping().then((r) => r === 'PONG'));
    const ok = state.status === 'ready' && (await probe().catch(() => false));
    return ok ? { ok } : { ok, detail: downDetail };
  });

  try {
    await checkDurabilityAtBoot(app, state, config.STATE_REQUIRE_DURABLE);
  } catch (err) {
    if (own) await quitOrDisconnect(state);
    throw err;
  }
  return connections;
}
