import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { FastifyInstance, FastifyPluginAsync, FastifySchemaValidationError, RouteOptions } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import { TypeBoxValidatorCompiler, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Cache } from '../index.js';
import type { CategoryCache } from '../types.js';
import { removedOrUnavailable } from './applied.js';
import { requireAdmin, type AdminHook } from './auth.js';
import {
  CacheAdminRateLimitedError,
  CacheBadRequestError,
  CacheStatsRateLimitedError,
  CacheUnknownCategoryError,
} from './errors.js';
import {
  CacheStatsSchema,
  CacheStatsWithStateSchema,
  ClearQuerySchema,
  ErrorResponseSchema,
  InvalidateBodySchema,
  ProbeResponseSchema,
  RemovedSchema,
} from './schemas.js';

export interface AdminRateLimit {
  /** Requests per window per client IP. Default 60. */
  max?: number;
  /** Window in ms or an ms-style string ('1 minute'). Default 60000. */
  timeWindow?: number | string;
  /**
   * GET /stats has a budget of its own, so that a dashboard polling it and the mutating routes never use up each
   * other's. Default 600 per 60000 ms per client IP.
   */
  stats?: { max?: number; timeWindow?: number | string };
}

export interface AdminRoutesOptions {
  adminToken: string | undefined;
  /** Replaces the bearer-token check on every admin route, GET /stats included (the host's own authentication). */
  adminHook?: AdminHook | undefined;
  adminRoutes: FastifyPluginAsync | undefined;
  rateLimit: AdminRateLimit | false;
  /** Upper bound in ms of the probe's direct TTL read. */
  probeTimeoutMs: number;
  /** OpenAPI security scheme the guarded routes declare. */
  securityScheme: string | undefined;
  state?: StateFigures | undefined;
}

/** Figures of the service's state (not cache), shown under `state` in GET /stats. */
export type StateFigures = () => Promise<Record<string, unknown>>;

const TAGS = ['cache'];
const PROBE_TTL_SECONDS = 60;
const ADMIN_DESCRIPTION = 'Requires `Authorization: Bearer <CACHE_ADMIN_TOKEN>`.';

/**
 * Strict validation for the admin routes whatever the host's Ajv settings are: Fastify's default Ajv
 * coerces types ("abc" becomes ["abc"]) and silently drops unknown properties, which would turn a
 * malformed invalidation into a different, valid one.
 */
const strict = {
  validatorCompiler: TypeBoxValidatorCompiler,
  schemaErrorFormatter: (errors: FastifySchemaValidationError[], dataVar: string) =>
    new CacheBadRequestError(
      [...new Set(errors.map((e) => describeValidationError(e, dataVar)).filter((m) => m !== undefined))].slice(0, 5).join('; ') ||
        `${dataVar} is invalid`,
    ),
} as const;

function describeValidationError(e: FastifySchemaValidationError, dataVar: string): string | undefined {
  const at = `${dataVar}${e.instancePath}`;
  // TypeBox reports each unknown property twice: once as `additionalProperties: false` and once here.
  if (e.keyword === 'boolean' && e.schemaPath.endsWith('/additionalProperties')) return undefined;
  if (e.keyword === 'additionalProperties') {
    const names = (e.params as { additionalProperties?: unknown }).additionalProperties;
    return `${at} has unknown properties: ${Array.isArray(names) ? names.slice(0, 5).map((n) => JSON.stringify(String(n).slice(0, 64))).join(', ') : '?'}`;
  }
  if (e.keyword === 'pattern' && e.instancePath === '/pattern') return `${at} must not contain control characters`;
  return `${at} ${e.message ?? 'is invalid'}`;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function isInvalidPatternError(err: unknown): err is Error {
  return err instanceof Error && (err.name === 'InvalidPatternError' || (err as { code?: unknown }).code === 'CACHE_INVALID_PATTERN');
}

function categoryOf(cache: Cache, name: string): CategoryCache {
  if (!cache.hasCategory(name)) {
    const known = cache.listCategories().map((c) => c.name);
    throw new CacheUnknownCategoryError(JSON.stringify(name), known.join(', ') || '(none)');
  }
  return cache.category(name);
}

/** Appends `hook` after the onRequest hooks already on the route (the rate limiter's among them). */
function appendOnRequest(route: RouteOptions, hook: AdminHook): void {
  const existing = route.onRequest;
  if (Array.isArray(existing)) route.onRequest = [...existing, hook];
  else if (existing) route.onRequest = [existing, hook];
  else route.onRequest = [hook];
}

/** GET /stats is open; everything else, the service's own admin routes included, needs the bearer token. */
export const adminRoutesPlugin = async (scope: FastifyInstance, opts: AdminRoutesOptions): Promise<void> => {
  if (opts.rateLimit !== false) {
    await scope.register(rateLimit, {
      global: true,
      max: opts.rateLimit.max ?? 60,
      timeWindow: opts.rateLimit.timeWindow ?? 60_000,
      // No `ban` is configured, so the limiter only ever answers 429.
      errorResponseBuilder: (_req, ctx) => new CacheAdminRateLimitedError(ctx.after),
    });
  }

  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  const cache = scope.cache;

  const statsLimit = opts.rateLimit === false ? undefined : opts.rateLimit.stats;
  app.get(
    '/stats',
    {
      ...strict,
      ...(opts.adminHook ? { onRequest: opts.adminHook } : {}),
      ...(opts.rateLimit === false
        ? {}
        : {
            config: {
              rateLimit: {
                max: statsLimit?.max ?? 600,
                timeWindow: statsLimit?.timeWindow ?? 60_000,
                errorResponseBuilder: (_req, ctx) => new CacheStatsRateLimitedError(ctx.after),
              },
            },
          }),
      schema: {
        tags: TAGS,
        summary: 'Cache statistics',
        ...(opts.adminHook ? { 'x-scope': 'admin' } : {}),
        description:
          'Per-category hits/misses/hit rate of this service (all replicas), plus Redis INFO figures that are server-wide across all DBs.',
        response: { 200: opts.state ? CacheStatsWithStateSchema : CacheStatsSchema, 429: ErrorResponseSchema },
      },
    },
    async (request) => {
      if (!opts.state) return cache.stats();
      const [stats, state] = await Promise.all([
        cache.stats(),
        opts.state().catch((err: unknown) => {
          request.log.warn({ err: { message: (err as Error)?.message } }, 'state figures unavailable');
          return null;
        }),
      ]);
      return { ...stats, state };
    },
  );

  await scope.register(async (guarded) => {
    const admin = opts.adminHook ?? requireAdmin(opts.adminToken);
    // An onRoute hook rather than addHook('onRequest') so the check runs after the rate limiter:
    // scope-level hooks run before route-level ones, and the limiter is route-level.
    guarded.addHook('onRoute', (route) => {
      appendOnRequest(route, admin);
      // `security` is @fastify/swagger's addition to the route schema (not a dependency here).
      if (opts.securityScheme) route.schema = Object.assign({}, route.schema, { security: [{ [opts.securityScheme]: [] }] });
      // With the host's own check, the OpenAPI document says these need its admin scope.
      if (opts.adminHook) route.schema = Object.assign({}, route.schema, { 'x-scope': 'admin' });
    });

    const g = guarded.withTypeProvider<TypeBoxTypeProvider>();
    const errorResponses = { 400: ErrorResponseSchema, 401: ErrorResponseSchema, 429: ErrorResponseSchema, 503: ErrorResponseSchema };

    g.delete(
      '/clear',
      {
        ...strict,
        schema: {
          tags: TAGS,
          summary: "Remove every key of this service, or of one category",
          description: `SCAN + UNLINK over this service's own keys only; never FLUSHDB. ${ADMIN_DESCRIPTION}`,
          querystring: ClearQuerySchema,
          response: { 200: RemovedSchema, ...errorResponses },
        },
      },
      async (request) => {
        const { category } = request.query;
        const removed = category === undefined ? await cache.clear() : await categoryOf(cache, category).clear();
        return removedOrUnavailable(cache, removed);
      },
    );

    g.post(
      '/invalidate',
      {
        ...strict,
        schema: {
          tags: TAGS,
          summary: 'Invalidate keys, a key pattern, tags, or a whole category',
          description: `Exactly one of keys, pattern or tags; or category alone to clear it. keys and pattern need category; tags are service-wide. ${ADMIN_DESCRIPTION}`,
          body: InvalidateBodySchema,
          response: { 200: RemovedSchema, ...errorResponses },
        },
      },
      async (request) => {
        const { category, keys, pattern, tags } = request.body;
        const selectors = [keys, pattern, tags].filter((s) => s !== undefined).length;
        if (selectors > 1) {
          throw new CacheBadRequestError('Give only one of keys, pattern or tags');
        }
        if (tags !== undefined) {
          if (category !== undefined) {
            throw new CacheBadRequestError('tags are service-wide: send tags without category');
          }
          return removedOrUnavailable(cache, await cache.invalidateTags(tags));
        }
        if (category === undefined) {
          throw new CacheBadRequestError(
            selectors === 0
              ? 'Give category (to clear it), category with keys or pattern, or tags'
              : 'keys and pattern need a category',
          );
        }
        const cat = categoryOf(cache, category);
        if (keys !== undefined) return removedOrUnavailable(cache, await cat.invalidate(keys));
        if (pattern !== undefined) {
          try {
            return await removedOrUnavailable(cache, await cat.invalidatePattern(pattern));
          } catch (err) {
            if (isInvalidPatternError(err)) throw new CacheBadRequestError(err.message);
            throw err;
          }
        }
        return removedOrUnavailable(cache, await cat.clear());
      },
    );

    g.post(
      '/test',
      {
        schema: {
          tags: TAGS,
          summary: 'Round trip through Redis: set, get, TTL and delete a probe key',
          description: `Answers 503 with status "error" when the round trip failed. ${ADMIN_DESCRIPTION}`,
          response: { 200: ProbeResponseSchema, 503: ProbeResponseSchema, 401: ErrorResponseSchema, 429: ErrorResponseSchema },
        },
      },
      async (request, reply) => {
        const first = cache.listCategories()[0];
        // A service whose data is all state declares no category: its probe is a plain key under its prefix.
        const cat = first ? cache.category(first.name) : undefined;
        const key = `__probe:${randomUUID()}`;
        const fullKey = cat ? cat.key(key) : `${cache.service}:${key}`;
        const bound = <T>(p: Promise<T>) => withTimeout(p, opts.probeTimeoutMs);
        const value = { probe: key, at: new Date().toISOString() };
        let readBack: unknown;
        let ttl: number | null = null;
        let error: string | undefined;
        try {
          // A category write gives up at the cache's command deadline (250 ms by default) and says only false: on a
          // machine busy for that long one write can miss it while Redis is fine, so the probe tries it twice before
          // it reports the round trip failed.
          const write = async () =>
            cat
              ? cat.set(key, value, { ttl: PROBE_TTL_SECONDS })
              : (await bound(cache.client.set(fullKey, JSON.stringify(value), 'EX', PROBE_TTL_SECONDS))) === 'OK';
          const written = (await write()) || (await write());
          readBack = cat ? await cat.get(key) : JSON.parse((await bound(cache.client.get(fullKey))) ?? 'null');
          ttl = await bound(cache.client.ttl(fullKey));
          if (!written) error = 'set failed (twice, each within the cache command deadline)';
          else if (!isDeepStrictEqual(readBack, value)) error = 'read back a different value';
          else if (!(ttl > 0)) error = `unexpected TTL ${ttl}`;
        } catch (err) {
          error = err instanceof Error ? err.message : String(err);
        } finally {
          if (cat) await cat.delete(key);
          else await bound(cache.client.del(fullKey)).catch(() => undefined);
        }
        if (error) {
          request.log.warn({ category: first?.name ?? null, error }, 'cache probe failed');
          return reply.code(503).send({ status: 'error' as const, cached_value: readBack ?? null, ttl, error });
        }
        return { status: 'ok' as const, cached_value: readBack, ttl };
      },
    );

    if (opts.adminRoutes) await guarded.register(opts.adminRoutes);
  });
};
