import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getTestRedis, startRedisServer, uniqueName, type RedisServer, type TestRedis } from '@aicache/test-redis';
import { checkStateDurability, createStateRedis, StateDurabilityError } from '../src/index.js';
import { recordingLogger, testConfig } from './helpers.js';

describe('checkStateDurability', () => {
  let evicting: RedisServer;
  let durable: RedisServer;
  beforeAll(async () => {
    [evicting, durable] = await Promise.all([
      startRedisServer({ args: ['--maxmemory-policy', 'allkeys-lru'] }),
      startRedisServer({ args: ['--maxmemory-policy', 'noeviction'], appendfsync: 'everysec' }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([evicting?.stop(), durable?.stop()]);
  });

  it('warns loudly about a Redis that evicts and does not persist', async () => {
    const client = createStateRedis(testConfig({ REDIS_STATE_URL: evicting.url }));
    const { logger, lines } = recordingLogger();
    try {
      const result = await checkStateDurability(client, { logger });
      expect(result).toEqual({ evicting: true, persistent: false, policy: 'allkeys-lru', appendonly: false, save: '' });
      const warn = lines.find((l) => l.level === 'warn');
      expect(warn?.msg).toMatch(/maxmemory-policy is 'allkeys-lru'/);
      expect(warn?.msg).toMatch(/noeviction and appendonly yes/);
    } finally {
      client.disconnect();
    }
  });

  it('is quiet about a noeviction Redis with AOF on', async () => {
    const client = createStateRedis(testConfig({ REDIS_STATE_URL: durable.url }));
    const { logger, lines } = recordingLogger();
    try {
      const result = await checkStateDurability(client, { logger, requireDurable: true });
      expect(result).toEqual({ evicting: false, persistent: true, policy: 'noeviction', appendonly: true, save: '' });
      expect(lines.filter((l) => l.level === 'warn')).toEqual([]);
    } finally {
      client.disconnect();
    }
  });

  it('with requireDurable refuses an evicting Redis, naming the policy and the fix', async () => {
    const client = createStateRedis(testConfig({ REDIS_STATE_URL: evicting.url }));
    try {
      const err = await checkStateDurability(client, { requireDurable: true }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StateDurabilityError);
      expect((err as Error).message).toMatch(/allkeys-lru/);
      expect((err as Error).message).toMatch(/maxmemory-policy noeviction and appendonly yes/);
    } finally {
      client.disconnect();
    }
  });

  it('falls back to INFO when CONFIG is renamed away', async () => {
    const locked = await startRedisServer({ args: ['--maxmemory-policy', 'volatile-lru', '--rename-command', 'CONFIG', ''] });
    const client = createStateRedis(testConfig({ REDIS_STATE_URL: locked.url }));
    try {
      const result = await checkStateDurability(client, { logger: recordingLogger().logger });
      expect(result).toEqual({ evicting: true, persistent: false, policy: 'volatile-lru', appendonly: false, save: null });
    } finally {
      client.disconnect();
      await locked.stop();
    }
  });
});

describe('createStateRedis', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await getTestRedis();
  });

  it('connects with the cache settings and the given DB when REDIS_STATE_URL is unset', async () => {
    const client = createStateRedis(testConfig({ REDIS_HOST: redis.host, REDIS_PORT: String(redis.port) }), { db: 9 });
    const key = uniqueName('state');
    try {
      await client.set(key, 'v', 'EX', 60);
      expect(await client.get(key)).toBe('v');
      const info = await client.client('INFO');
      expect(String(info)).toMatch(/db=9/);
      await client.del(key);
    } finally {
      client.disconnect();
    }
  });

  it('waits for a reconnect instead of failing a state write during a short outage', async () => {
    const server = await startRedisServer();
    const client = createStateRedis(testConfig({ REDIS_STATE_URL: server.url }), { logger: recordingLogger().logger });
    try {
      await client.set('before', '1');
      await server.kill();
      const write = client.set('during', '2');
      await server.restart();
      expect(await write).toBe('OK');
      expect(await client.get('during')).toBe('2');
    } finally {
      client.disconnect();
      await server.stop();
    }
  });
});
