import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { RedisOptions } from 'ioredis';
import { CacheConfigError } from './errors.js';
import type { CategorySpec, ResolvedCategory } from './types.js';

type Env = Record<string, string | undefined>;

const CATEGORY_NAME = /^[A-Za-z0-9][A-Za-z0-9_]*$/;
const SERVICE_NAME = /^[a-z0-9][a-z0-9-]*$/;
export const DEFAULT_L1_TTL_SECONDS = 60;

/** Service names end up as the key prefix: letters, digits and dashes only, so they never act as glob characters. */
export function assertServiceName(service: string): void {
  if (typeof service !== 'string' || !SERVICE_NAME.test(service) || service.length > 64) {
    throw new CacheConfigError('service', `Cache service name must be 1-64 lower-case letters, digits or dashes, got ${JSON.stringify(service)}`);
  }
}

export function ttlEnvVar(category: string): string {
  return `CACHE_TTL_${category.toUpperCase()}`;
}

/** `CACHE_L1_MAX_BYTES_<CATEGORY>`: turns the in-process tier on (a byte cap) or off (0) for one category. */
export function l1EnvVar(category: string): string {
  return `CACHE_L1_MAX_BYTES_${category.toUpperCase()}`;
}

function parsePositiveInt(raw: string): number | undefined {
  const s = raw.trim();
  if (!/^\d+$/.test(s)) return undefined;
  const n = Number(s);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/**
 * Applies `CACHE_TTL_<CATEGORY>` and `CACHE_L1_MAX_BYTES_<CATEGORY>` overrides to the declared categories. An
 * unset (or empty) variable keeps the default; anything but a positive whole number of seconds (a whole number
 * of bytes, 0 for none) throws CacheConfigError naming the variable.
 */
export function resolveCategories(spec: Record<string, CategorySpec>, env: Env = process.env): ResolvedCategory[] {
  const out: ResolvedCategory[] = [];
  for (const [name, cat] of Object.entries(spec)) {
    if (!CATEGORY_NAME.test(name) || name.startsWith('_')) {
      throw new CacheConfigError(`categories.${name}`, `Cache category name ${JSON.stringify(name)} must be letters, digits and underscores (not starting with "_")`);
    }
    const envVar = ttlEnvVar(name);
    if (!Number.isSafeInteger(cat.ttl) || cat.ttl <= 0) {
      throw new CacheConfigError(`categories.${name}.ttl`, `Default TTL of cache category "${name}" must be a positive whole number of seconds, got ${JSON.stringify(cat.ttl)}`);
    }
    const grace = cat.grace ?? 0;
    if (!Number.isSafeInteger(grace) || grace < 0) {
      throw new CacheConfigError(`categories.${name}.grace`, `Grace of cache category "${name}" must be a whole number of seconds >= 0, got ${JSON.stringify(cat.grace)}`);
    }
    let l1MaxBytes = cat.l1MaxBytes ?? 0;
    if (!Number.isSafeInteger(l1MaxBytes) || l1MaxBytes < 0) {
      throw new CacheConfigError(`categories.${name}.l1MaxBytes`, `l1MaxBytes of cache category "${name}" must be a whole number >= 0`);
    }
    const l1Var = l1EnvVar(name);
    const rawL1 = env[l1Var];
    let l1Where = `categories.${name}.l1MaxBytes`;
    if (rawL1 !== undefined && rawL1.trim() !== '') {
      const parsed = rawL1.trim() === '0' ? 0 : parsePositiveInt(rawL1);
      if (parsed === undefined) {
        throw new CacheConfigError(l1Var, `${l1Var} must be a whole number of bytes (0 turns the L1 off), got ${JSON.stringify(rawL1)}`);
      }
      l1MaxBytes = parsed;
      l1Where = l1Var;
    }
    if (l1MaxBytes > 0 && cat.sliding) {
      throw new CacheConfigError(l1Where, `Cache category "${name}" is sliding: it cannot have an L1 (an in-process hit would not extend its TTL in Redis)`);
    }
    const l1TtlSeconds = cat.l1TtlSeconds ?? DEFAULT_L1_TTL_SECONDS;
    if (!Number.isSafeInteger(l1TtlSeconds) || l1TtlSeconds <= 0) {
      throw new CacheConfigError(`categories.${name}.l1TtlSeconds`, `l1TtlSeconds of cache category "${name}" must be a positive whole number of seconds, got ${JSON.stringify(cat.l1TtlSeconds)}`);
    }
    const raw = env[envVar];
    let ttl = cat.ttl;
    let source: ResolvedCategory['source'] = 'default';
    if (raw !== undefined && raw.trim() !== '') {
      const parsed = parsePositiveInt(raw);
      if (parsed === undefined) {
        throw new CacheConfigError(envVar, `${envVar} must be a positive whole number of seconds, got ${JSON.stringify(raw)}`);
      }
      ttl = parsed;
      source = 'env';
    }
    out.push({ name, ttl, envVar, source, sliding: cat.sliding ?? false, grace, l1MaxBytes, ...(l1MaxBytes > 0 ? { l1TtlSeconds } : {}) });
  }
  return out;
}

function readCa(env: Env): Buffer | undefined {
  const file = env.REDIS_TLS_CA_FILE;
  if (!file) return undefined;
  try {
    return readFileSync(file);
  } catch (err) {
    throw new CacheConfigError('REDIS_TLS_CA_FILE', `REDIS_TLS_CA_FILE could not be read (${JSON.stringify(file)}): ${(err as Error).message}`);
  }
}

function parsePort(raw: string, variable: string): number {
  const s = raw.trim();
  const n = Number(s);
  if (!/^\d+$/.test(s) || n < 1 || n > 65535) {
    throw new CacheConfigError(variable, `${variable} must be a port number 1-65535, got ${JSON.stringify(raw)}`);
  }
  return n;
}

/** Seconds as the original stack wrote them (`5`, `0.5`), in ms. */
function parseSeconds(env: Env, variable: string): number | undefined {
  const raw = env[variable];
  if (raw === undefined || raw.trim() === '') return undefined;
  const s = raw.trim();
  const ms = Math.round(Number(s) * 1000);
  if (!/^(\d+(\.\d+)?|\.\d+)$/.test(s) || ms < 1 || !Number.isSafeInteger(ms)) {
    throw new CacheConfigError(variable, `${variable} must be a positive number of seconds, got ${JSON.stringify(raw)}`);
  }
  return ms;
}

/**
 * Settings kept from the original stack that map onto ioredis: REDIS_SOCKET_CONNECT_TIMEOUT -> connectTimeout and
 * REDIS_SOCKET_TIMEOUT -> socketTimeout (a connection that does not answer a command in time is dropped and made
 * again, as redis-py's socket_timeout did; each cache call stays bounded by CACHE_COMMAND_TIMEOUT_MS). Seconds there,
 * ms here. The settings without a counterpart are named by unmappedRedisSettings.
 */
function timeoutOptions(env: Env): Pick<RedisOptions, 'connectTimeout' | 'socketTimeout'> {
  const connectTimeout = parseSeconds(env, 'REDIS_SOCKET_CONNECT_TIMEOUT');
  const socketTimeout = parseSeconds(env, 'REDIS_SOCKET_TIMEOUT');
  return { ...(connectTimeout !== undefined ? { connectTimeout } : {}), ...(socketTimeout !== undefined ? { socketTimeout } : {}) };
}

/**
 * Connection options for the cache Redis from env. `REDIS_URL` (redis:// or rediss://, user and password in
 * the URL) wins over REDIS_HOST/REDIS_PORT/REDIS_USERNAME/REDIS_PASSWORD. The DB index always comes from
 * `dbVar` (a /N path in the URL is ignored), so one URL can serve every service. REDIS_TLS_CA_FILE adds a CA
 * for rediss:// (or turns TLS on for the host/port form). REDIS_SOCKET_CONNECT_TIMEOUT and REDIS_SOCKET_TIMEOUT
 * (seconds) become connectTimeout and socketTimeout.
 */
export function redisOptionsFromEnv(env: Env, dbVar: string, defaultDb: number): RedisOptions {
  const rawDb = env[dbVar];
  let db = defaultDb;
  if (rawDb !== undefined && rawDb.trim() !== '') {
    const s = rawDb.trim();
    const n = Number(s);
    if (!/^\d+$/.test(s) || n > 15) {
      throw new CacheConfigError(dbVar, `${dbVar} must be a Redis DB index 0-15, got ${JSON.stringify(rawDb)}`);
    }
    db = n;
  }
  if (!Number.isInteger(db) || db < 0 || db > 15) {
    throw new CacheConfigError(dbVar, `Default DB index for ${dbVar} must be 0-15, got ${JSON.stringify(defaultDb)}`);
  }

  const timeouts = timeoutOptions(env);
  const url = env.REDIS_URL?.trim();
  if (url) {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      // The URL may hold a password: never echo it.
      throw new CacheConfigError('REDIS_URL', 'REDIS_URL is not a valid URL (expected redis://[user:password@]host[:port])');
    }
    if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
      throw new CacheConfigError('REDIS_URL', `REDIS_URL must start with redis:// or rediss://, got ${JSON.stringify(u.protocol + '//')}`);
    }
    const opts: RedisOptions = {
      host: u.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1',
      port: u.port ? parsePort(u.port, 'REDIS_URL') : 6379,
      db,
      ...timeouts,
    };
    if (u.username) opts.username = decodeURIComponent(u.username);
    if (u.password) opts.password = decodeURIComponent(u.password);
    if (u.protocol === 'rediss:') {
      opts.tls = tlsOptions(opts.host ?? '127.0.0.1', readCa(env));
    }
    return opts;
  }

  const opts: RedisOptions = {
    host: env.REDIS_HOST?.trim() || '127.0.0.1',
    port: env.REDIS_PORT?.trim() ? parsePort(env.REDIS_PORT, 'REDIS_PORT') : 6379,
    db,
    ...timeouts,
  };
  if (env.REDIS_USERNAME) opts.username = env.REDIS_USERNAME;
  if (env.REDIS_PASSWORD) opts.password = env.REDIS_PASSWORD;
  const ca = readCa(env);
  if (ca) opts.tls = tlsOptions(opts.host ?? '127.0.0.1', ca);
  return opts;
}

/** SNI takes a host name only: an IP address there is ignored by servers and deprecated by Node (DEP0123). */
function tlsOptions(host: string, ca: Buffer | string | undefined): NonNullable<RedisOptions['tls']> {
  return { ...(ca ? { ca } : {}), ...(isIP(host) ? {} : { servername: host }) };
}
