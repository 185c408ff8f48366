import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, Redis } from 'ioredis';
import { startRedisCluster, startRedisServer, type RedisClusterHandle, type RedisServer } from '@aicache/test-redis';
import { AuthStore, digestOf } from '../src/index.js';

/**
 * What expiry leaves in users' sets (the digest of a session that timed out, the id of a key past its expiry) is
 * removed by sweepOrphans, on one server and on a Cluster (where the store's keys share the {auth} slot); live
 * sessions and keys, and other users' sets, stay.
 */
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let server: RedisServer;
let cluster: RedisClusterHandle;
const clients: Array<Redis | Cluster> = [];

beforeAll(async () => {
  server = await startRedisServer();
  cluster = await startRedisCluster({ replicasPerMaster: 0 });
}, 90_000);

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await server?.stop();
  await cluster?.stop();
}, 30_000);

async function scenario(redis: Redis | Cluster): Promise<void> {
  const store = new AuthStore(redis, { sessionTtlSeconds: 3600 });
  const p = store.prefix;
  const alice = await store.createUser({ username: `alice-${Date.now()}`, password: 'correct horse battery', tenant: 'acme' });
  const bob = await store.createUser({ username: `bob-${Date.now()}`, password: 'correct horse battery', tenant: 'globex' });
  const live = await store.createSession(alice);
  const expiring = await Promise.all([store.createSession(alice), store.createSession(bob)]);
  const liveKey = await store.createKey(alice, { name: 'live', scopes: ['read'] });
  const expiringKey = await store.createKey(bob, { name: 'short', scopes: ['read'], expiresInSeconds: 3600 });
  // Their records run out in Redis, as a TTL ends them: the users' sets still name them.
  for (const s of expiring) await redis.pexpire(`${p}session:${digestOf(s.token)}`, 1);
  await redis.pexpire(`${p}keyid:${expiringKey.record.id}`, 1);
  await redis.pexpire(`${p}key:${digestOf(expiringKey.key)}`, 1);
  await sleep(20);
  expect(await redis.scard(`${p}user:${alice.id}:sessions`)).toBe(2);
  expect(await redis.scard(`${p}user:${bob.id}:sessions`)).toBe(1);

  const swept = await store.sweepOrphans({ batch: 1 });
  expect(swept).toMatchObject({ sessionRefs: 2, keyRefs: 1, complete: true });
  expect(swept.userSets).toBe(4); // each user's sessions and keys
  expect(await redis.smembers(`${p}user:${alice.id}:sessions`)).toEqual([digestOf(live.token)]);
  expect(await redis.exists(`${p}user:${bob.id}:sessions`)).toBe(0);
  expect(await redis.smembers(`${p}user:${alice.id}:keys`)).toEqual([liveKey.record.id]);
  expect(await redis.exists(`${p}user:${bob.id}:keys`)).toBe(0);
  expect(await store.resolve(digestOf(live.token), 'session')).not.toBeNull();
  expect(await store.resolve(digestOf(liveKey.key), 'key')).not.toBeNull();

  // Nothing more the second time; a bound of one set stops early and says so.
  expect(await store.sweepOrphans()).toMatchObject({ sessionRefs: 0, keyRefs: 0, complete: true });
  expect((await store.sweepOrphans({ maxKeys: 1 })).complete).toBe(false);
}

describe('AuthStore.sweepOrphans', () => {
  it('on one server', async () => {
    const redis = new Redis(server.url);
    clients.push(redis);
    await scenario(redis);
  }, 30_000);

  it('on a Cluster', async () => {
    const redis = new Cluster(cluster.nodes);
    clients.push(redis);
    while (redis.status !== 'ready') await sleep(20);
    await scenario(redis);
  }, 30_000);
});
