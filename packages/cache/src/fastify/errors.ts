import createError from '@fastify/error';

/** Missing, wrong, or unconfigured admin bearer token. */
export const CacheAdminUnauthorizedError = createError<'CACHE_ADMIN_UNAUTHORIZED', 401, [string]>(
  'CACHE_ADMIN_UNAUTHORIZED',
  '%s',
  401,
);

/** Bad input to an admin route, including schema validation failures. */
export const CacheBadRequestError = createError<'CACHE_BAD_REQUEST', 400, [string]>('CACHE_BAD_REQUEST', '%s', 400);

/** A category the service did not declare. */
export const CacheUnknownCategoryError = createError<'CACHE_UNKNOWN_CATEGORY', 400, [string, string]>(
  'CACHE_UNKNOWN_CATEGORY',
  'Unknown cache category %s; known categories: %s',
  400,
);

export const CacheAdminRateLimitedError = createError<'CACHE_ADMIN_RATE_LIMITED', 429, [string]>(
  'CACHE_ADMIN_RATE_LIMITED',
  'Too many cache admin requests; retry in %s',
  429,
);

/** GET /stats has its own per-IP budget (dashboards poll it); past it, this. */
export const CacheStatsRateLimitedError = createError<'CACHE_STATS_RATE_LIMITED', 429, [string]>(
  'CACHE_STATS_RATE_LIMITED',
  'Too many cache stats requests; retry in %s',
  429,
);

/** Thrown at registration: production must never run with unusable (or, worse, open) admin routes. */
export const CacheAdminTokenRequiredError = createError<'CACHE_ADMIN_TOKEN_REQUIRED', 500, []>(
  'CACHE_ADMIN_TOKEN_REQUIRED',
  'CACHE_ADMIN_TOKEN must be set in production: the cache admin routes need a bearer token',
  500,
);

/** Redis did not answer an admin call that changes the cache, so nothing may have changed. */
export const CacheUnavailableError = createError<'CACHE_UNAVAILABLE', 503, []>(
  'CACHE_UNAVAILABLE',
  'Redis did not answer, so nothing was removed; try again when GET /ready no longer says the cache is degraded',
  503,
);
