import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { startRedisServer, uniqueName, type RedisServer } from '@aicache/test-redis';
import { createService, registerRedis, type ServiceApp } from '../src/index.js';
import { testConfig } from './helpers.js';

/** `name{labels} value` lines of a scrape, as [labels, value] per metric name. */
function parse(text: string): Map<string, Array<{ labels: Record<string, string>; value: number }>> {
  const out = new Map<string, Array<{ labels: Record<string, string>; value: number }>>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k as string] = v as string;
    const list = out.get(m[1] as string) ?? [];
    list.push({ labels, value: Number(m[3]) });
    out.set(m[1] as string, list);
  }
  return out;
}

function one(scrape: ReturnType<typeof parse>, name: string, match: Record<string, string> = {}): number | undefined {
  const found = (scrape.get(name) ?? []).filter((s) => Object.entries(match).every(([k, v]) => s.labels[k] === v));
  if (found.length > 1) throw new Error(`${name} ${JSON.stringify(match)}: ${found.length} series`);
  return found[0]?.value;
}

async function scrape(app: ServiceApp): Promise<ReturnType<typeof parse>> {
  const res = await app.inject('/metrics');
  expect(res.statusCode).toBe(200);
  expect(res.body).not.toMatch(/\bNaN\b/);
  return parse(res.body);
}

let server: RedisServer;
const apps: ServiceApp[] = [];

async function service(url: string, stateDb = 4): Promise<ServiceApp> {
  const config = testConfig({ REDIS_URL: url, CACHE_COMMAND_TIMEOUT_MS: '100' });
  const app = await createService({ name: 'metrics-kit', version: '1.0.0', config, logger: false, defaultMetrics: false, underPressure: false });
  apps.push(app);
  await registerRedis(app, config, {
    cache: {
      service: uniqueName('metrics-kit'),
      categories: { things: { ttl: 60 }, hot: { ttl: 60, l1MaxBytes: 1_000_000 } },
      dbVariable: 'REDIS_DB_TEST',
      defaultDb: 3,
      rateLimit: false,
    },
    state: { db: stateDb },
  });
  return app;
}

beforeAll(async () => {
  server = await startRedisServer({ args: ['--maxmemory', '64mb', '--maxmemory-policy', 'noeviction'], appendfsync: 'everysec' });
});
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});
afterAll(async () => {
  await server?.stop();
});

describe('/metrics: Redis and cache operating figures', () => {
  it('shows memory, maxmemory, clients, durability, hit rate, circuit, command latency and L1 size of a live Redis', async () => {
    const app = await service(server.url);
    const things = app.cache.category('things');
    await things.getOrSet('a', async () => 'A'); // miss
    await things.getOrSet('a', async () => 'A'); // hit
    await things.getOrSet('a', async () => 'A'); // hit
    const hot = app.cache.category('hot');
    await hot.getOrSet('big', async () => 'x'.repeat(10_000));
    await hot.get('big');

    const m = await scrape(app);
    for (const redis of ['cache', 'state']) {
      expect(one(m, 'redis_up', { redis })).toBe(1);
      expect(one(m, 'redis_memory_used_bytes', { redis })).toBeGreaterThan(0);
      expect(one(m, 'redis_memory_max_bytes', { redis })).toBe(64 * 1024 * 1024);
      expect(one(m, 'redis_connected_clients', { redis })).toBeGreaterThanOrEqual(2);
      expect(one(m, 'redis_evicted_keys_total', { redis })).toBe(0);
    }
    expect(one(m, 'state_redis_durable')).toBe(1);
    expect(one(m, 'cache_hit_rate_percent', { category: 'things' })).toBe(66.7);
    expect(one(m, 'cache_circuit_breaker_state')).toBe(0);
    expect(one(m, 'cache_l1_entries', { category: 'hot' })).toBe(1);
    expect(one(m, 'cache_l1_bytes', { category: 'hot' })).toBeGreaterThan(10_000);
    expect(one(m, 'cache_l1_max_bytes', { category: 'hot' })).toBe(1_000_000);
    expect(one(m, 'cache_l1_entries', { category: 'things' })).toBeUndefined();
    expect(one(m, 'cache_lease_waits_total', { category: 'things' })).toBe(0);
    const count = one(m, 'cache_redis_command_duration_seconds_count') ?? 0;
    expect(count).toBeGreaterThanOrEqual(4);
    expect(one(m, 'cache_redis_command_duration_seconds_bucket', { le: '+Inf' })).toBe(count);
    expect(one(m, 'cache_redis_command_duration_seconds_sum')).toBeGreaterThan(0);
  });

  it('sends at most one INFO per connection per sampling period, however often it is scraped', async () => {
    const app = await service(server.url);
    const admin = new Redis(server.url);
    try {
      const infoCalls = async () => Number(/cmdstat_info:calls=(\d+)/.exec(String(await admin.info('commandstats')))?.[1] ?? 0);
      await scrape(app);
      const before = await infoCalls();
      for (let i = 0; i < 20; i++) await scrape(app);
      // Our own INFO commandstats is the one call counted besides the scrapes' (none: the samples are still fresh).
      expect((await infoCalls()) - before).toBe(1);
    } finally {
      admin.disconnect();
    }
  });

  it('says the state Redis is not durable when it may evict', async () => {
    const evicting = await startRedisServer({ args: ['--maxmemory-policy', 'allkeys-lru', '--save', ''] });
    try {
      const app = await service(evicting.url);
      expect(one(await scrape(app), 'state_redis_durable')).toBe(0);
    } finally {
      await evicting.stop();
    }
  });

  it('counts evicted keys of a full LRU Redis', async () => {
    const lru = await startRedisServer({ args: ['--maxmemory', '2mb', '--maxmemory-policy', 'allkeys-lru'] });
    const admin = new Redis(lru.url);
    try {
      const payload = 'v'.repeat(10_000);
      for (let i = 0; i < 400; i++) await admin.set(`fill:${i}`, payload);
      const app = await service(lru.url);
      expect(one(await scrape(app), 'redis_evicted_keys_total', { redis: 'cache' })).toBeGreaterThan(0);
    } finally {
      admin.disconnect();
      await lru.stop();
    }
  });

  it('answers a scrape while the Redis is paused (INFO given up after its bound), with redis_up 0 once the sample is due', async () => {
    const paused = await startRedisServer();
    const app = await service(paused.url);
    try {
      expect(one(await scrape(app), 'redis_up', { redis: 'cache' })).toBe(1);
      paused.pause();
      // The sample taken while it answered is reused for REDIS_SAMPLE_TTL_MS (5 s); the next one times out.
      await new Promise((r) => setTimeout(r, 5200));
      const m = await scrape(app);
      expect(one(m, 'redis_up', { redis: 'cache' })).toBe(0);
      expect(one(m, 'redis_memory_used_bytes', { redis: 'cache' })).toBeUndefined();
    } finally {
      paused.resume();
      await paused.stop();
    }
  });

  it('turns the circuit to open and redis_up to 0 when the cache Redis dies, with no NaN and no Redis figures', async () => {
    const doomed = await startRedisServer();
    const app = await service(doomed.url);
    const things = app.cache.category('things');
    await things.set('k', 'v');
    expect(one(await scrape(app), 'cache_circuit_breaker_state')).toBe(0);

    await doomed.kill();
    // The client may take a moment to see the socket close.
    for (let i = 0; i < 100 && app.cache.client.status === 'ready'; i++) await new Promise((r) => setTimeout(r, 50));
    for (let i = 0; i < 10; i++) expect(await things.get('k')).toBeUndefined();
    const m = await scrape(app);
    expect(one(m, 'cache_circuit_breaker_state')).toBe(2);
    expect(one(m, 'redis_up', { redis: 'cache' })).toBe(0);
    expect(one(m, 'redis_up', { redis: 'state' })).toBe(0);
    expect(one(m, 'redis_memory_used_bytes', { redis: 'cache' })).toBeUndefined();
    expect(one(m, 'state_redis_durable')).toBeUndefined();
    expect(one(m, 'cache_errors_total', { category: 'things' })).toBeGreaterThan(0);
  });
});
