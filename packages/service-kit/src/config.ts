import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseEnv } from 'node:util';
import envSchema from 'env-schema';
import { Type, type Static, type TSchema } from 'typebox';
import { redactUrl } from './logger.js';
import { clusterDbIssue, redisTopologies } from './topology.js';

/** Settings every service shares; services spread `BaseConfig.properties` into their own schema. */
export const BaseConfig = Type.Object({
  NODE_ENV: Type.Union([Type.Literal('development'), Type.Literal('production'), Type.Literal('test')], { default: 'development' }),
  HOST: Type.String({ default: '127.0.0.1', minLength: 1 }),
  PORT: Type.Integer({ default: 3000, minimum: 0, maximum: 65535 }),
  LOG_LEVEL: Type.Union(
    [Type.Literal('fatal'), Type.Literal('error'), Type.Literal('warn'), Type.Literal('info'), Type.Literal('debug'), Type.Literal('trace'), Type.Literal('silent')],
    { default: 'info' },
  ),
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  REDIS_HOST: Type.String({ default: '127.0.0.1', minLength: 1 }),
  REDIS_PORT: Type.Integer({ default: 6379, minimum: 1, maximum: 65535 }),
  REDIS_USERNAME: Type.Optional(Type.String()),
  REDIS_PASSWORD: Type.Optional(Type.String()),
  REDIS_TLS_CA_FILE: Type.Optional(Type.String()),
  REDIS_STATE_URL: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  /** Cache connection through Sentinel: host:port of the Sentinels, with REDIS_SENTINEL_NAME. Not with REDIS_URL/HOST/PORT. */
  REDIS_SENTINELS: Type.Optional(Type.String({ description: 'host:port,host:port of the Sentinels watching the cache primary' })),
  REDIS_SENTINEL_NAME: Type.Optional(Type.String({ description: 'name of the primary the Sentinels watch' })),
  REDIS_SENTINEL_USERNAME: Type.Optional(Type.String()),
  REDIS_SENTINEL_PASSWORD: Type.Optional(Type.String()),
  /** Cache connection to a Redis Cluster: host:port of some nodes (the rest are discovered). Not with REDIS_URL/HOST/PORT. */
  REDIS_CLUSTER_NODES: Type.Optional(Type.String({ description: 'host:port,host:port of Redis Cluster nodes' })),
  /** The state connection's own Sentinel set or Cluster; none of REDIS_STATE_* set: the state goes where the cache goes. */
  REDIS_STATE_SENTINELS: Type.Optional(Type.String()),
  REDIS_STATE_SENTINEL_NAME: Type.Optional(Type.String()),
  REDIS_STATE_SENTINEL_USERNAME: Type.Optional(Type.String()),
  REDIS_STATE_SENTINEL_PASSWORD: Type.Optional(Type.String()),
  REDIS_STATE_CLUSTER_NODES: Type.Optional(Type.String()),
  CACHE_ADMIN_TOKEN: Type.Optional(Type.String({ minLength: 1 })),
  CACHE_COMMAND_TIMEOUT_MS: Type.Integer({ default: 250, minimum: 1 }),
  CACHE_TTL_JITTER: Type.Number({ default: 0.05, minimum: 0, maximum: 0.5 }),
  CACHE_ADMIN_RATE_LIMIT_MAX: Type.Integer({ default: 60, minimum: 1, description: 'admin calls per client IP per window' }),
  CACHE_ADMIN_RATE_LIMIT_WINDOW_MS: Type.Integer({ default: 60_000, minimum: 1000 }),
  CACHE_STATS_RATE_LIMIT_MAX: Type.Integer({ default: 600, minimum: 1, description: 'GET /api/v1/cache/stats calls per client IP per window (a budget of its own)' }),
  CACHE_STATS_RATE_LIMIT_WINDOW_MS: Type.Integer({ default: 60_000, minimum: 1000 }),
  /** Seconds, as the original stack wrote them: ioredis connectTimeout of both connections. */
  REDIS_SOCKET_CONNECT_TIMEOUT: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
  /** Seconds: ioredis socketTimeout of both connections (a connection that stops answering is made again). */
  REDIS_SOCKET_TIMEOUT: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
  /** Settings of the original stack with no counterpart here: read only to warn at boot (see registerCache). */
  REDIS_MAX_CONNECTIONS: Type.Optional(Type.String()),
  REDIS_RETRY_ON_TIMEOUT: Type.Optional(Type.String()),
  REDIS_DB: Type.Optional(Type.String()),
  PEER_TIMEOUT_MS: Type.Integer({ default: 5000, minimum: 1 }),
  PEER_RETRIES: Type.Integer({ default: 2, minimum: 0, maximum: 10 }),
  BODY_LIMIT_BYTES: Type.Integer({ default: 1_048_576, minimum: 1 }),
  STATE_REQUIRE_DURABLE: Type.Boolean({ default: false }),
  /** After each state write, WAIT for this many replicas (Sentinel or Cluster) before answering; 0 = do not wait. */
  STATE_WAIT_REPLICAS: Type.Integer({ default: 0, minimum: 0, maximum: 10 }),
  /** Longest WAIT of a state write, ms; a write whose replicas did not confirm in time is still acknowledged (logged). */
  STATE_WAIT_TIMEOUT_MS: Type.Integer({ default: 500, minimum: 1 }),
  SERVICE_NAME: Type.Optional(Type.String({ minLength: 1 })),
  /**
   * Behind a load balancer: the balancer's addresses, CIDRs or proxy-addr names (`loopback`, `uniquelocal` for the
   * private ranges), comma-separated, or `true`. A request from one of them is taken to be from the address its
   * X-Forwarded-For names (per-address login and guessing limits, logs); any other keeps its socket address. Unset: the
   * socket's address. (Fastify refuses a hop count: it cannot tell the balancer from a client.)
   */
  TRUST_PROXY: Type.Optional(Type.String({ pattern: '^(true|false|[0-9a-zA-Z:./]+(,\\s*[0-9a-zA-Z:./]+)*)$' })),
  /** on: every route but /health, /ready, /metrics and /docs needs a credential. off: development only (refused in production). */
  AUTH_MODE: Type.Union([Type.Literal('on'), Type.Literal('off')], { default: 'on' }),
  /** DB index of users, keys, sessions, service-token secret, limits and the audit stream on the state Redis (shared by all services). */
  REDIS_DB_AUTH: Type.Integer({ default: 3, minimum: 0, maximum: 15 }),
  /** A session ends this long after its last use. */
  SESSION_TTL_SECONDS: Type.Integer({ default: 86_400, minimum: 60 }),
  /** How long a verified credential is trusted in process; the bound on revocation when a pub/sub announcement is lost. */
  AUTH_CACHE_TTL_MS: Type.Integer({ default: 5000, minimum: 0, maximum: 60_000 }),
  /** Upper bound of each auth Redis call; then 503 with Retry-After. */
  AUTH_TIMEOUT_MS: Type.Integer({ default: 1000, minimum: 1 }),
  /** Signs the short-lived tokens services send each other; unset: one generated secret kept on the state Redis. */
  SERVICE_TOKEN_SECRET: Type.Optional(Type.String({ minLength: 32 })),
  /** Requests per credential (API key; a user's sessions and service tokens together) per minute, across replicas; 0 = no limit. */
  AUTH_RATE_LIMIT_PER_MINUTE: Type.Integer({ default: 6000, minimum: 0 }),
  /** Failed logins of one username within AUTH_LOGIN_LOCKOUT_SECONDS before it is locked for as long. */
  AUTH_LOGIN_MAX_FAILURES: Type.Integer({ default: 10, minimum: 1 }),
  AUTH_LOGIN_LOCKOUT_SECONDS: Type.Integer({ default: 900, minimum: 1 }),
  /** Failed logins from one address (IPv6: one /64) per hour before it is locked for an hour. */
  AUTH_LOGIN_MAX_FAILURES_PER_IP: Type.Integer({ default: 100, minimum: 1 }),
  /** Embedding inputs per principal per minute (multimodal-worker), across replicas; 0 = no limit. */
  EMBEDDINGS_INPUTS_PER_MINUTE: Type.Integer({ default: 60_000, minimum: 0 }),
  /** Entries kept in the audit stream (approximate trim). */
  AUDIT_MAX_ENTRIES: Type.Integer({ default: 10_000, minimum: 100 }),
});
export type BaseConfig = Static<typeof BaseConfig>;

export interface ConfigIssue {
  variable: string;
  message: string;
}

/** Thrown by loadConfig; the message names every bad variable and why. */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(readonly issues: ConfigIssue[]) {
    super(`Invalid configuration:\n${issues.map((i) => `  - ${i.variable}: ${i.message}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export interface LoadConfigOptions {
  /** Variables to read; default process.env. */
  env?: Record<string, string | undefined>;
  /**
   * `.env` file to read under the env (real env wins). true = `.env` in cwd, a string = that path,
   * false = none. Default: true when `env` is not given, false when it is, so tests that pass their own
   * env never pick up a developer's local `.env`.
   */
  dotenv?: boolean | string;
}

const SECRET_NAME = /PASSWORD|TOKEN|SECRET|KEY/i;

function shown(variable: string, value: unknown): string {
  if (value === undefined) return '';
  if (SECRET_NAME.test(variable)) return ' (value hidden)';
  const text = typeof value === 'string' ? redactUrl(value) : String(value);
  return ` (got ${JSON.stringify(text.length > 80 ? `${text.slice(0, 77)}...` : text)})`;
}

interface AjvIssue {
  keyword: string;
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
}

function describe(errors: AjvIssue[], data: Record<string, unknown>): ConfigIssue[] {
  const byVar = new Map<string, AjvIssue[]>();
  for (const e of errors) {
    const variable =
      e.keyword === 'required' ? String(e.params.missingProperty) : e.instancePath.replace(/^\//, '').split('/')[0] || '(root)';
    const list = byVar.get(variable) ?? [];
    list.push(e);
    byVar.set(variable, list);
  }
  const issues: ConfigIssue[] = [];
  for (const [variable, list] of byVar) {
    const value = data[variable];
    const consts = list.filter((e) => e.keyword === 'const').map((e) => String(e.params.allowedValue));
    let message: string;
    if (list.some((e) => e.keyword === 'required')) message = 'is required but not set';
    else if (consts.length > 0) message = `must be one of ${consts.join(', ')}`;
    else {
      message = list
        .filter((e) => e.keyword !== 'anyOf')
        .map((e) => {
          if (e.keyword === 'type') {
            const t = String(e.params.type);
            return t === 'integer' ? 'must be a whole number' : t === 'number' ? 'must be a number' : t === 'boolean' ? 'must be true or false' : `must be a ${t}`;
          }
          if (e.keyword === 'pattern' && String(e.params.pattern).startsWith('^rediss?')) return 'must be a redis:// or rediss:// URL';
          return e.message ?? e.keyword;
        })
        .join('; ');
    }
    issues.push({ variable, message: `${message}${shown(variable, value)}` });
  }
  return issues;
}

const WHOLE = /^-?\d+$/;
const DECIMAL = /^-?(\d+(\.\d+)?|\.\d+)$/;

/**
 * Ajv coerces any string JavaScript reads as a number ('0x10', '1e3', 'Infinity'), so numbers are checked as
 * written, before coercion: decimal digits only (and a decimal point for non-integers).
 */
function numberIssues(schema: TSchema, data: Record<string, string>): ConfigIssue[] {
  const properties = (schema as { properties?: Record<string, { type?: unknown }> }).properties ?? {};
  const issues: ConfigIssue[] = [];
  for (const [variable, property] of Object.entries(properties)) {
    const raw = data[variable];
    // What JavaScript cannot read as a number, Ajv refuses with its own message.
    if (raw === undefined || Number.isNaN(Number(raw))) continue;
    const value = raw.trim();
    if (property.type === 'integer' && !WHOLE.test(value)) {
      issues.push({ variable, message: `must be a whole number written in decimal digits${shown(variable, raw)}` });
    } else if (property.type === 'number' && !DECIMAL.test(value)) {
      issues.push({ variable, message: `must be a number written in decimal digits, without exponent${shown(variable, raw)}` });
    }
  }
  return issues;
}

function readDotenv(path: string): Record<string, string> {
  const file = resolve(path);
  if (!existsSync(file)) return {};
  return parseEnv(readFileSync(file, 'utf8')) as Record<string, string>;
}

/**
 * Validates env against a TypeBox schema with env-schema: defaults applied, strings coerced to
 * numbers/booleans, unknown variables dropped. An empty value counts as unset, as compose files
 * write `REDIS_PASSWORD=` for "none". Numbers must be written in decimal digits.
 */
export function loadConfig<T extends TSchema>(schema: T, opts: LoadConfigOptions = {}): Static<T> {
  const env = opts.env ?? process.env;
  const dotenv = opts.dotenv ?? opts.env === undefined;
  const fromFile = dotenv ? readDotenv(typeof dotenv === 'string' ? dotenv : '.env') : {};
  const merged: Record<string, string> = {};
  for (const source of [fromFile, env]) {
    for (const [k, v] of Object.entries(source)) {
      if (v === undefined) continue;
      if (v === '') delete merged[k];
      else merged[k] = v;
    }
  }
  const strict = numberIssues(schema, merged);
  let config: Static<T>;
  try {
    // env-schema sets additionalProperties=false on the schema it gets; hand it a copy.
    config = envSchema({ schema: { ...(schema as object) }, data: merged, env: false, dotenv: false }) as Static<T>;
  } catch (err) {
    const ajvErrors = (err as { errors?: AjvIssue[] }).errors;
    if (!Array.isArray(ajvErrors)) throw err;
    // A number not written in digits is the first thing to fix, whatever Ajv made of it.
    const named = new Set(strict.map((i) => i.variable));
    throw new ConfigError([...strict, ...describe(ajvErrors, merged).filter((i) => !named.has(i.variable))]);
  }
  if (strict.length > 0) throw new ConfigError(strict);
  const topologyIssues = redisTopologyIssues(schema, merged);
  if (topologyIssues.length > 0) throw new ConfigError(topologyIssues);
  return config;
}

/**
 * Connection modes (one server, Sentinel, Cluster) of the cache and state connections, judged on the raw env: a
 * REDIS_HOST written beside REDIS_CLUSTER_NODES is refused, the schema's default REDIS_HOST is not. Also what a
 * service's REDIS_DB_<SERVICE> may hold when a connection goes to a Cluster (see clusterDbIssue).
 */
function redisTopologyIssues(schema: TSchema, env: Record<string, string>): ConfigIssue[] {
  const properties = (schema as { properties?: Record<string, { default?: unknown }> }).properties ?? {};
  if (!('REDIS_CLUSTER_NODES' in properties)) return [];
  let topologies: ReturnType<typeof redisTopologies>;
  try {
    topologies = redisTopologies(env);
  } catch (err) {
    const variable = (err as { variable?: unknown }).variable;
    if (typeof variable !== 'string') throw err;
    return [{ variable, message: (err as Error).message }];
  }
  const issues: ConfigIssue[] = [];
  for (const [variable, property] of Object.entries(properties)) {
    if (!/^REDIS_DB_[A-Z0-9_]+$/.test(variable)) continue;
    const message = clusterDbIssue(env, topologies, variable, typeof property.default === 'number' ? property.default : undefined);
    if (message) issues.push({ variable, message });
  }
  return issues;
}
