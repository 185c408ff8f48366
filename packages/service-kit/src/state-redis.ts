import { redisOptionsFromEnv } from '@aicache/cache';
import { Redis, type RedisOptions } from 'ioredis';
import type { BaseConfig } from './config.js';
import { redactUrl } from './logger.js';

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
>;

export interface StateRedisOptions {
  /** DB index for state (the service's DB); a /N path in the URL is ignored, as for the cache connection. */
  db?: number;
  logger?: KitLogger;
  /** Extra ioredis options over the kit's. */
  redis?: RedisOptions;
}

/**
 * The ioredis client for state (agent memory, conversations, document index): REDIS_STATE_URL, else the
 * cache connection settings. Unlike the cache client it waits for a reconnect (offline queue, a few
 * retries per command) instead of failing fast, because a lost state write is a lost user fact.
 */
export function createStateRedis(config: StateRedisConfig, opts: StateRedisOptions = {}): Redis {
  const url = config.REDIS_STATE_URL ?? config.REDIS_URL;
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
  const client = new Redis({
    ...connection,
    maxRetriesPerRequest: 3,
    commandTimeout: 2000,
    connectTimeout: connection.connectTimeout ?? 5000,
    enableOfflineQueue: true,
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
    connectionName: `${config.SERVICE_NAME ?? 'service'}:state`,
    ...opts.redis,
  });
  const target = url ? redactUrl(url) : `${config.REDIS_HOST}:${config.REDIS_PORT}`;
  // Log once per outage, not once per reconnect attempt.
  let down = false;
  client.on('error', (err: Error) => {
    if (down) return;
    down = true;
    opts.logger?.error({ err: { message: redactUrl(err.message) }, redis: target }, 'state Redis connection error');
  });
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
  const out: Record<string, string> = {};
  if (Array.isArray(reply)) {
    for (let i = 0; i + 1 < reply.length; i += 2) out[String(reply[i])] = String(reply[i + 1]);
  } else if (reply instanceof Map) {
    for (const [k, v] of reply) out[String(k)] = String(v);
  } else if (reply && typeof reply === 'object') {
    for (const [k, v] of Object.entries(reply)) out[k] = String(v);
  }
  return out;
}

function infoFields(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1).trim();
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
  const info = infoFields(String(await client.info('memory')) + '\n' + String(await client.info('persistence')));
  return {
    policy: info.maxmemory_policy ?? null,
    appendonly: info.aof_enabled === undefined ? null : info.aof_enabled === '1',
    save: null,
  };
}

/**
 * Reads maxmemory-policy, appendonly and save from the state Redis and says loudly when state can be lost:
 * an evicting policy (anything but noeviction) or no persistence at all. With requireDurable it throws.
 */
export async function checkStateDurability(client: Redis, opts: DurabilityOptions = {}): Promise<StateDurability> {
  const settings = await readSettings(client);
  const evicting = settings.policy !== 'noeviction';
  const persistent = settings.appendonly === true || (settings.save !== null && settings.save.trim() !== '');
  const result: StateDurability = { evicting, persistent, ...settings };

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
  if (problems.length === 0) {
    opts.logger?.info({ durability: result }, 'state Redis is durable');
    return result;
  }
  const message =
    `State Redis is not durable: ${problems.join('; ')}. ` +
    'Fix: run the state Redis with maxmemory-policy noeviction and appendonly yes ' +
    '(or point REDIS_STATE_URL at one that has them).';
  if (opts.requireDurable) throw new StateDurabilityError(`${message} STATE_REQUIRE_DURABLE=true refuses to start.`, result);
  opts.logger?.warn({ durability: result }, `${message} Set STATE_REQUIRE_DURABLE=true to refuse to start instead.`);
  return result;
}
