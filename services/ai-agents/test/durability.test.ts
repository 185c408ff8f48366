import { afterAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServer } from '@aicache/test-redis';
import { build, testConfig } from './helpers.js';

const servers: RedisServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

async function server(opts: Parameters<typeof startRedisServer>[0]) {
  const s = await startRedisServer(opts);
  servers.push(s);
  return s;
}

describe('state durability at boot', () => {
  it('STATE_REQUIRE_DURABLE=true refuses to boot on an allkeys-lru Redis, naming the policy', async () => {
    const s = await server({ appendfsync: 'everysec', args: ['--maxmemory-policy', 'allkeys-lru'] });
    await expect(build(testConfig(s.url, 6, { STATE_REQUIRE_DURABLE: 'true' }))).rejects.toThrow(/allkeys-lru/);
  });

  it('without STATE_REQUIRE_DURABLE the same Redis boots (with a warning) and serves', async () => {
    const s = await server({ args: ['--maxmemory-policy', 'allkeys-lru'] });
    const app = await build(testConfig(s.url, 6));
    try {
      expect((await app.inject({ method: 'POST', url: '/api/v1/agents', payload: { name: 'ok' } })).statusCode).toBe(201);
    } finally {
      await app.close();
    }
  });

  it('STATE_REQUIRE_DURABLE=true boots on a noeviction Redis with AOF', async () => {
    const s = await server({ appendfsync: 'everysec', args: ['--maxmemory-policy', 'noeviction'] });
    const app = await build(testConfig(s.url, 6, { STATE_REQUIRE_DURABLE: 'true' }));
    await app.close();
  });

  it('a bad CACHE_TTL_AGENT_MEMORY stops the boot naming the variable', async () => {
    expect(() => testConfig('redis://127.0.0.1:1', 6, { CACHE_TTL_AGENT_MEMORY: 'soon' })).toThrow(/CACHE_TTL_AGENT_MEMORY/);
    expect(() => testConfig('redis://127.0.0.1:1', 6, { CACHE_TTL_AGENT_MEMORY: '0' })).toThrow(/CACHE_TTL_AGENT_MEMORY/);
  });
});
