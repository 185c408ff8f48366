import { Cache, redisOptionsFromEnv, type CategorySpec } from '@aicache/cache';

/**
 * A Cache built the way a service builds it (redisOptionsFromEnv from a REDIS_URL), on one DB of the
 * bench Redis. CACHE_TTL_* of the caller's environment are kept out so every run uses the same TTLs.
 */
export function ourCache<C extends string>(
  redisUrl: string,
  service: string,
  categories: Record<C, CategorySpec>,
  db = 0,
  extra: { statsFlushIntervalMs?: number; commandTimeoutMs?: number } = {},
): Cache<C> {
  const connection = redisOptionsFromEnv({ REDIS_URL: redisUrl, BENCH_DB: String(db) }, 'BENCH_DB', db);
  return new Cache<C>({ service, categories, env: {}, connection, ...extra });
}

/** The cache's client fails fast while connecting (no offline queue): wait until it is ready before timing anything. */
export async function ready(cache: Cache<string>, timeoutMs = 10_000): Promise<void> {
  const c = cache.client;
  if (c.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`cache client not ready after ${timeoutMs} ms (status ${c.status})`)), timeoutMs);
    c.once('ready', () => {
      clearTimeout(t);
      resolve();
    });
  });
}
