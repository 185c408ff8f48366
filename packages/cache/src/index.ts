export { Cache, cacheConnectionOptions, KEY_COUNT_LIMIT, type CacheOpsFigures } from './cache.js';
export { LATENCY_BUCKETS_SECONDS, type LatencySnapshot } from './latency.js';
export {
  quitOrDisconnect,
  serverClockOffset,
  createRedisClient,
  redisTopologyFromEnv,
  parseNodes,
  isCluster,
  scanEveryMaster,
  type RedisClient,
  type RedisNode,
  type RedisTopology,
} from './connection.js';
export { fieldsOf, parseInfo, streamEntries, type StreamEntry } from './replies.js';
export { l1EnvVar, resolveCategories, redisOptionsFromEnv, ttlEnvVar } from './config.js';
export { unmappedRedisSettings, type SettingNotice } from './seed-settings.js';
export { CacheError, CacheConfigError, UnknownCategoryError, InvalidPatternError } from './errors.js';
export { entryKey, tagKey, statsKey, leaseKey, MAX_KEY_BYTES } from './keys.js';
export { encode, decode } from './serialization.js';
export { CircuitBreaker, type CircuitState, type BreakerOptions } from './breaker.js';
export type * from './types.js';
