export { loadConfig, BaseConfig, ConfigError, type ConfigIssue, type LoadConfigOptions } from './config.js';
export { loggerOptions, createLogger, redactUrl, REDACT_PATHS, type LoggerConfig } from './logger.js';
export { errors, ErrorResponse, errorResponses } from './errors.js';
export { formatValidationErrors } from './validation.js';
export { createService, renderError, type CreateServiceOptions, type ServiceApp, type ServiceConfig } from './app.js';
export { healthPlugin, type ReadinessCheck, type ReadinessCheckOptions, type ReadinessResult } from './health.js';
export { metricsPlugin, type MetricsOptions } from './metrics.js';
export { docsPlugin, operationIdOf, withCacheHeader, sendCachedJson, ADMIN_SECURITY_SCHEME, type DocsOptions } from './docs.js';
export {
  classifyNetworkError,
  networkErrorCode,
  isUnavailable,
  type NetworkFailure,
  type NetworkFailureKind,
  type ClassifyOptions,
} from './network-errors.js';
export { PeerClient, type PeerClientOptions, type PeerRequestOptions, type PeerFailure } from './peer-client.js';
export {
  createStateRedis,
  checkStateDurability,
  STATE_CLUSTER_OPTIONS,
  StateDurabilityError,
  type StateDurability,
  type DurabilityOptions,
  type StateRedisConfig,
  type StateRedisOptions,
  type KitLogger,
} from './state-redis.js';
export { StateCalls, StateUnavailable, DEADLINE_GUARD, type StateCallsOptions, type StateReplication } from './state-calls.js';
export { redisTopologies, redisTopologiesOfConfig, clusterDbIssue, stateKeyPrefix, stateReplication, type RedisTopologies } from './topology.js';
export { registerCache, type ServiceCacheOptions, type ServiceCacheConfig } from './cache.js';
export {
  registerRedis,
  READINESS,
  DURABILITY_BOOT_WAIT_MS,
  type RedisConnections,
  type RedisOptions,
  type StateConnectionOptions,
} from './redis.js';
// Re-exported so that importing the kit also brings the cache plugin's `app.cache` type.
export type { CachePluginOptions } from '@aicache/cache/fastify';
export { runServer, type ServerConfig, type RunServerOptions } from './server.js';
export { registerAuth, AuthModeRefusedError, SESSION_TOUCH_MS, type AuthConfig, type AuthOptions } from './auth.js';
