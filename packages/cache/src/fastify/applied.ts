import type { Cache } from '../cache.js';
import { CacheUnavailableError } from './errors.js';

/**
 * Cache calls turn Redis trouble into "0 removed", which an admin must not read as "there was nothing to
 * remove". When nothing was removed and Redis is down (or the circuit is open, so the call never reached
 * it), the admin route answers 503 instead.
 */
export async function removedOrUnavailable(cache: Cache, removed: number): Promise<{ removed: number }> {
  if (removed === 0) {
    const health = await cache.health();
    if (health.status === 'down' || health.circuit === 'open') throw new CacheUnavailableError();
  }
  return { removed };
}
