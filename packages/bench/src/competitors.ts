import { BentoCache, bentostore } from 'bentocache';
import { redisDriver } from 'bentocache/drivers/redis';
import { createCache, type Cache as CacheManager } from 'cache-manager';
import { createKeyv } from '@keyv/redis';
import type { Redis } from 'ioredis';

/**
 * bentocache with its Redis driver as the only layer (no L1, no bus), on an ioredis client we hand it.
 * bentocache declares a peer of ioredis ^5; pnpm resolves that peer to this workspace's ioredis 6, and the
 * driver checks `instanceof Redis` against that same module, so the instance must be an ioredis 6 one
 * (an ioredis 5 instance from an npm alias fails that check and the driver would open its own default
 * connection to 127.0.0.1:6379). Same client library as ours and raw: the rows compare cache libraries only.
 */
export function bento(connection: Redis, prefix: string): BentoCache<{ redis: ReturnType<typeof bentostore> }> {
  return new BentoCache({
    default: 'redis',
    stores: { redis: bentostore().useL2Layer(redisDriver({ connection, prefix })) },
  });
}

/** cache-manager 7 over one Keyv store backed by @keyv/redis (node-redis client). */
export async function cacheManager(redisUrl: string, db: number, namespace: string): Promise<{ cm: CacheManager; close: () => Promise<void> }> {
  const keyv = createKeyv(`${redisUrl}/${db}`, { namespace });
  keyv.on('error', () => undefined);
  const cm = createCache({ stores: [keyv] });
  // @keyv/redis connects on first use; connect now so the first timed call does not pay for it.
  await keyv.get('__warm__');
  return { cm, close: () => cm.disconnect().then(() => undefined) };
}
