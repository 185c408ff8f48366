import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isCluster, type RedisClient } from '@aicache/cache';
import { startRedisCluster, startRedisSentinel, startRedisServer, uniqueName, type RedisClusterHandle, type RedisSentinelSet } from '@aicache/test-redis';
import { Redis } from 'ioredis';
import {
  checkStateDurability,
  createService,
  createStateRedis,
  DEADLINE_GUARD,
  registerRedis,
  StateCalls,
  StateDurabilityError,
} from '../src/index.js';
import { captureStream, recordingLogger, testConfig } from './helpers.js';
import { createLogger } from '../src/logger.js';

const SET_SCRIPT = `${DEADLINE_GUARD}
redis.call('SET', KEYS[1], ARGV[2])
return 1`;

const closeClient = (c: RedisClient) => c.quit().catch(() => c.disconnect());

describe('the state connection on a Cluster', () => {
  let cluster: RedisClusterHandle;
  beforeAll(async () => {
    cluster = await startRedisCluster({ appendfsync: 'everysec', args: ['--maxmemory-policy', 'noeviction'] });
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it('REDIS_CLUSTER_NODES alone puts the state on the Cluster, and durability is read on every master', async () => {
    const { logger, lines } = recordingLogger();
    const client = createStateRedis(testConfig({ REDIS_CLUSTER_NODES: cluster.nodesEnv }), { logger });
    try {
      expect(isCluster(client)).toBe(true);
      const durable = await checkStateDurability(client, { requireDurable: true, logger });
      expect(durable).toMatchObject({ evicting: false, persistent: true });
      expect(durable.masters).toHaveLength(3);

      // One evicting master is enough to make the state not durable, and the message names it.
      const [, second] = await cluster.masters();
      const admin = new Redis(second!.port, second!.host);
      try {
        await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
        const err = await checkStateDurability(client, { requireDurable: true }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(StateDurabilityError);
        expect((err as Error).message).toContain(`master ${second!.host}:${second!.port}: maxmemory-policy is 'allkeys-lru'`);
        await checkStateDurability(client, { logger });
        expect(lines.some((l) => l.level === 'warn' && /allkeys-lru/.test(String(l.msg)))).toBe(true);
      } finally {
        await admin.config('SET', 'maxmemory-policy', 'noeviction');
        admin.disconnect();
      }
    } finally {
      await closeClient(client);
    }
  });

  it('a service on a Cluster: ready, one info line for its REDIS_DB_*, and close does not hang once the Cluster is gone', async () => {
    const sink = captureStream();
    const config = testConfig({ REDIS_CLUSTER_NODES: cluster.nodesEnv, LOG_LEVEL: 'info' });
    const app = await createService({ name: 'redis-kit', version: '1.0.0', config, logger: createLogger(config, sink.stream), defaultMetrics: false, underPressure: false });
    await registerRedis(app, config, {
      cache: { service: uniqueName('redis-kit'), categories: { things: { ttl: 60 } }, dbVariable: 'REDIS_DB_TEST', defaultDb: 3, rateLimit: false },
      state: { db: 4 },
    });
    await app.ready();
    try {
      expect(isCluster(app.redis.state!)).toBe(true);
      expect((await app.inject('/ready')).json()).toMatchObject({ status: 'ready', checks: { state: { ok: true } } });
      const dbLines = sink.lines().filter((l) => /REDIS_DB_TEST is not used on a Redis Cluster/.test(String(l.msg)));
      expect(dbLines).toHaveLength(1);
      expect(dbLines[0]!.level).toBe(30);
      await Promise.all(cluster.servers.map((s) => s.kill()));
    } finally {
      // Hang detector, not a speed check: a close that waits on the dead Cluster would never settle.
      const closed = await Promise.race([app.close().then(() => 'closed'), new Promise((r) => setTimeout(() => r('hung'), 10_000))]);
      expect(closed).toBe('closed');
    }
    // A Cluster client closed while its nodes are dead can stay 'disconnecting' (ioredis ends it on a pool drain that
    // never comes): what matters is that it neither reconnects nor holds a node connection.
    const state = app.redis.state!;
    await new Promise((r) => setTimeout(r, 1000));
    expect(['disconnecting', 'close', 'end']).toContain(state.status);
    expect(isCluster(state) && state.nodes().length).toBe(0);
  });
});

describe('state writes that WAIT for replicas (STATE_WAIT_REPLICAS)', () => {
  let set: RedisSentinelSet;
  beforeAll(async () => {
    set = await startRedisSentinel();
  }, 60_000);
  afterAll(async () => {
    await set?.stop();
  });

  it('through Sentinel: the write is on the replica when it is acknowledged, and nothing is logged', async () => {
    const { logger, lines } = recordingLogger();
    const client = createStateRedis(testConfig({ REDIS_SENTINELS: set.sentinelsEnv, REDIS_SENTINEL_NAME: set.name }));
    const calls = new StateCalls(client, { name: 'test store', timeoutMs: 1000, replication: { replicas: 1, timeoutMs: 1000, slotKey: 'k', logger } });
    try {
      const key = uniqueName('wait');
      await calls.write('set', (c, deadline) => c.eval(SET_SCRIPT, 1, key, deadline, 'v'));
      const primary = await set.primary();
      const replica = set.servers.find((s) => s.port !== primary.port)!;
      const direct = new Redis(replica.port, replica.host);
      try {
        // WAIT answered 1: the replica has it now, without waiting any longer.
        expect(await direct.get(key)).toBe('v');
      } finally {
        direct.disconnect();
      }
      expect(lines).toEqual([]);
    } finally {
      calls.detach();
      await closeClient(client);
    }
  });

  it('with no replica to wait for: the write stands, is acknowledged after the WAIT timeout, and the shortfall is logged', async () => {
    const lone = await startRedisServer();
    const { logger, lines } = recordingLogger();
    const client = createStateRedis(testConfig({ REDIS_STATE_URL: lone.url }));
    const calls = new StateCalls(client, { name: 'test store', timeoutMs: 1000, replication: { replicas: 1, timeoutMs: 100, slotKey: 'k', logger } });
    try {
      const key = uniqueName('wait');
      await calls.write('set', (c, deadline) => c.eval(SET_SCRIPT, 1, key, deadline, 'v'));
      expect(await client.get(key)).toBe('v');
      expect(lines).toEqual([{ level: 'warn', obj: { what: 'set', replicas: 0, wanted: 1 }, msg: expect.stringMatching(/before reaching the replicas/) }]);
    } finally {
      calls.detach();
      await closeClient(client);
      await lone.stop();
    }
  });
});
