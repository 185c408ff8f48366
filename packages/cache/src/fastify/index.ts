export { cachePlugin, cachePlugin as default, DEFAULT_PREFIX, type CachePluginOptions } from './plugin.js';
export { requireAdmin, type AdminHook } from './auth.js';
export { removedOrUnavailable } from './applied.js';
export type { AdminRateLimit, StateFigures } from './routes.js';
export {
  CacheAdminUnauthorizedError,
  CacheBadRequestError,
  CacheUnknownCategoryError,
  CacheAdminRateLimitedError,
  CacheStatsRateLimitedError,
  CacheAdminTokenRequiredError,
  CacheUnavailableError,
} from './errors.js';
export {
  CacheStatsSchema,
  CacheStatsWithStateSchema,
  CategoryStatsSchema,
  ErrorResponseSchema,
  RemovedSchema,
  ClearQuerySchema,
  InvalidateBodySchema,
  ProbeResponseSchema,
  CategoryNameSchema,
  KEYS_MAX_ITEMS,
  KEY_MAX_LENGTH,
  TAGS_MAX_ITEMS,
  PATTERN_MAX_LENGTH,
  type CacheStatsResponse,
  type InvalidateBody,
  type ClearQuery,
  type ProbeResponse,
} from './schemas.js';
