import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getTestRedis, startRedisServer, uniqueName, type TestRedis } from '@aicache/test-redis';
import type { Redis } from 'ioredis';
import { Cache, CacheConfigError, redisOptionsFromEnv, resolveCategories, unmappedRedisSettings } from '../src/index.js';
import { connectionOf, eventually, rawClient } from './helpers.js';

const categories = { search_results: { ttl: 3600 }, context_bundles: { ttl: 1800 } };

describe('resolveCategories', () => {
  it('keeps defaults when the variables are unset, and takes CACHE_TTL_<NAME> when set', () => {
    expect(resolveCategories(categories, {})).toEqual([
      { name: 'search_results', ttl: 3600, envVar: 'CACHE_TTL_SEARCH_RESULTS', source: 'default', sliding: false, grace: 0, l1MaxBytes: 0 },
      { name: 'context_bundles', ttl: 1800, envVar: 'CACHE_TTL_CONTEXT_BUNDLES', source: 'default', sliding: false, grace: 0, l1MaxBytes: 0 },
    ]);
    const [search] = resolveCategories(categories, { CACHE_TTL_SEARCH_RESULTS: '60' });
    expect(search).toMatchObject({ ttl: 60, source: 'env' });
  });

  it.each(['abc', '0', '-5', '1.5', '1e3', ' '.repeat(0) + '12abc'])('refuses CACHE_TTL_SEARCH_RESULTS=%j naming the variable and the value', (bad) => {
    const run = () => new Cache({ service: 'svc', categories, env: { CACHE_TTL_SEARCH_RESULTS: bad }, client: {} as never });
    expect(run).toThrow(CacheConfigError);
    expect(run).toThrow(/CACHE_TTL_SEARCH_RESULTS/);
    expect(run).toThrow(JSON.stringify(bad));
    try {
      run();
    } catch (err) {
      expect((err as CacheConfigError).code).toBe('CACHE_CONFIG_ERROR');
      expect((err as CacheConfigError).variable).toBe('CACHE_TTL_SEARCH_RESULTS');
    }
  });

  it('refuses bad service names and jitter', () => {
    expect(() => new Cache({ service: 'Bad:Name', categories, client: {} as never })).toThrow(CacheConfigError);
    expect(() => new Cache({ service: 'svc', categories, jitter: 0.9, client: {} as never })).toThrow(/jitter/);
  });
});

describe('redisOptionsFromEnv', () => {
  it('reads REDIS_URL with user and password, and takes the DB from the service variable (a /N path is ignored)', () => {
    const o = redisOptionsFromEnv({ REDIS_URL: 'redis://alice:p%40ss@redis.internal:6380/7', REDIS_DB_X: '3' }, 'REDIS_DB_X', 1);
    expect(o).toMatchObject({ host: 'redis.internal', port: 6380, username: 'alice', password: 'p@ss', db: 3 });
    expect(o.tls).toBeUndefined();
  });

  it('turns TLS on for rediss:// and reads REDIS_TLS_CA_FILE', () => {
    const o = redisOptionsFromEnv({ REDIS_URL: 'rediss://:secret@cache.example.com', REDIS_TLS_CA_FILE: new URL(import.meta.url).pathname }, 'REDIS_DB_X', 2);
    expect(o).toMatchObject({ host: 'cache.example.com', port: 6379, password: 'secret', db: 2 });
    expect(o.tls?.ca).toBeInstanceOf(Buffer);
    expect(o.tls?.servername).toBe('cache.example.com');
    // No SNI for an IP address (Node warns DEP0123 and servers ignore it); the certificate is still checked.
    const ip = redisOptionsFromEnv({ REDIS_URL: 'rediss://127.0.0.1:6380' }, 'D', 0);
    expect(ip.tls).toBeDefined();
    expect(ip.tls?.servername).toBeUndefined();
    expect(() => redisOptionsFromEnv({ REDIS_URL: 'rediss://h', REDIS_TLS_CA_FILE: '/nope/ca.pem' }, 'D', 0)).toThrow(/REDIS_TLS_CA_FILE/);
  });

  it('falls back to REDIS_HOST/PORT/USERNAME/PASSWORD and the default DB', () => {
    const o = redisOptionsFromEnv({ REDIS_HOST: 'r', REDIS_PORT: '6390', REDIS_USERNAME: 'u', REDIS_PASSWORD: 'pw' }, 'REDIS_DB_X', 1);
    expect(o).toMatchObject({ host: 'r', port: 6390, username: 'u', password: 'pw', db: 1 });
    expect(redisOptionsFromEnv({}, 'REDIS_DB_X', 0)).toMatchObject({ host: '127.0.0.1', port: 6379, db: 0 });
  });

  it.each(['16', '-1', 'one', '1.5'])('refuses a DB index of %j naming the variable', (bad) => {
    expect(() => redisOptionsFromEnv({ REDIS_DB_RETRIEVAL_PROXY: bad }, 'REDIS_DB_RETRIEVAL_PROXY', 1)).toThrow(/REDIS_DB_RETRIEVAL_PROXY/);
  });

  it('refuses a non-redis URL without echoing its password', () => {
    let message = '';
    try {
      redisOptionsFromEnv({ REDIS_URL: 'http://u:topsecret@h' }, 'D', 0);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/REDIS_URL/);
    expect(message).not.toMatch(/topsecret/);
  });
});

describe('settings carried over from the original stack', () => {
  it('maps REDIS_SOCKET_CONNECT_TIMEOUT and REDIS_SOCKET_TIMEOUT (seconds) onto ioredis connectTimeout and socketTimeout (ms)', () => {
    const o = redisOptionsFromEnv({ REDIS_SOCKET_CONNECT_TIMEOUT: '1.5', REDIS_SOCKET_TIMEOUT: '5' }, 'REDIS_DB_X', 1);
    expect(o).toMatchObject({ connectTimeout: 1500, socketTimeout: 5000 });
    const url = redisOptionsFromEnv({ REDIS_URL: 'redis://h:6379', REDIS_SOCKET_CONNECT_TIMEOUT: '0.25', REDIS_SOCKET_TIMEOUT: '0.5' }, 'REDIS_DB_X', 1);
    expect(url).toMatchObject({ connectTimeout: 250, socketTimeout: 500 });
    const unset = redisOptionsFromEnv({}, 'REDIS_DB_X', 1);
    expect(unset.connectTimeout).toBeUndefined();
    expect(unset.socketTimeout).toBeUndefined();
  });

  it.each(['0', '-1', 'five', '5s', '1e3', '0x10', '5,0'])('refuses REDIS_SOCKET_TIMEOUT=%j naming the variable', (bad) => {
    for (const variable of ['REDIS_SOCKET_TIMEOUT', 'REDIS_SOCKET_CONNECT_TIMEOUT']) {
      const run = () => redisOptionsFromEnv({ [variable]: bad }, 'REDIS_DB_X', 1);
      expect(run).toThrow(CacheConfigError);
      expect(run).toThrow(new RegExp(`${variable} must be a positive number of seconds`));
    }
  });

  it('names what to set instead of each setting that has no ioredis counterpart, and nothing when none is set', () => {
    expect(unmappedRedisSettings({}, 'REDIS_DB_RETRIEVAL_PROXY')).toEqual([]);
    expect(unmappedRedisSettings({ REDIS_SOCKET_TIMEOUT: '5', REDIS_SOCKET_CONNECT_TIMEOUT: '5' }, 'REDIS_DB_RETRIEVAL_PROXY')).toEqual([]);
    const notices = unmappedRedisSettings({ REDIS_MAX_CONNECTIONS: '50', REDIS_RETRY_ON_TIMEOUT: 'true', REDIS_DB: '0' }, 'REDIS_DB_RETRIEVAL_PROXY');
    expect(notices.map((n) => n.variable)).toEqual(['REDIS_MAX_CONNECTIONS', 'REDIS_RETRY_ON_TIMEOUT', 'REDIS_DB']);
    const byVar = Object.fromEntries(notices.map((n) => [n.variable, n.message]));
    expect(byVar.REDIS_DB).toMatch(/REDIS_DB is ignored.*set REDIS_DB_RETRIEVAL_PROXY instead/);
    expect(byVar.REDIS_MAX_CONNECTIONS).toMatch(/REDIS_MAX_CONNECTIONS is ignored.*one connection/);
    expect(byVar.REDIS_RETRY_ON_TIMEOUT).toMatch(/REDIS_RETRY_ON_TIMEOUT is ignored.*CACHE_COMMAND_TIMEOUT_MS/);
  });

  it('REDIS_SOCKET_TIMEOUT reaches the client: a server that stops answering has its connection dropped and retried', async () => {
    const server = await startRedisServer();
    const cache = new Cache({
      service: uniqueName('sock'),
      categories,
      connection: redisOptionsFromEnv({ REDIS_URL: server.url, REDIS_SOCKET_TIMEOUT: '0.3' }, 'REDIS_DB_X', 0),
    });
    try {
      await cache.category('search_results').set('k', 1);
      expect((cache.client as Redis).options.socketTimeout).toBe(300);
      let dropped = false;
      cache.client.once('close', () => (dropped = true));
      server.pause();
      expect(await cache.category('search_results').get('k')).toBeUndefined(); // a miss after the command timeout
      await eventually(() => dropped, 5000);
    } finally {
      server.resume();
      await cache.close();
      await server.stop();
    }
  });
});

describe('TTLs in Redis', () => {
  let r: TestRedis;
  let raw: Redis;
  const DB = 3;
  beforeAll(async () => {
    r = await getTestRedis();
    raw = rawClient(r, DB);
  });
  afterAll(async () => {
    raw.disconnect();
    await r.stop();
  });

  it('gives each category the TTL from env, with jitter only upwards and within the bound', async () => {
    const cache = new Cache({
      service: uniqueName('ttl'),
      categories,
      env: { CACHE_TTL_SEARCH_RESULTS: '120' },
      connection: connectionOf(r, DB),
      jitter: 0.1,
    });
    const search = cache.category('search_results');
    const bundles = cache.category('context_bundles');
    for (let i = 0; i < 20; i++) {
      expect(await search.set(`k${i}`, i)).toBe(true);
      expect(await bundles.set(`k${i}`, i)).toBe(true);
    }
    for (let i = 0; i < 20; i++) {
      const s = await raw.pttl(search.key(`k${i}`));
      const b = await raw.pttl(bundles.key(`k${i}`));
      expect(s).toBeGreaterThan(119_000);
      expect(s).toBeLessThanOrEqual(132_000);
      expect(b).toBeGreaterThan(1_799_000);
      expect(b).toBeLessThanOrEqual(1_980_000);
    }
    expect(await raw.ttl(search.key('k0'))).toBeGreaterThanOrEqual(119);
    await search.set('custom', 1, { ttl: 10 });
    expect(await raw.ttl(search.key('custom'))).toBeLessThanOrEqual(11);
    await cache.clear();
    await cache.close();
  });

  it('connects with a password (and user) taken from REDIS_URL, on the DB from the service variable', async () => {
    const server = await startRedisServer({ password: 'p@ss:w/rd#1' });
    try {
      const env = { REDIS_URL: `${server.url}/9`, REDIS_DB_TEST: '2' };
      const cache = new Cache({ service: uniqueName('auth'), categories, env, connection: redisOptionsFromEnv(env, 'REDIS_DB_TEST', 0) });
      expect(cache.db).toBe(2);
      expect(await cache.category('search_results').set('k', 'v')).toBe(true);
      expect(await cache.category('search_results').get('k')).toBe('v');
      expect((await cache.health()).status).not.toBe('down');
      await cache.close();
    } finally {
      await server.stop();
    }
  });

  it('sliding categories push the expiry back on every read hit', async () => {
    const cache = new Cache({ service: uniqueName('slide'), categories: { agent_memory: { ttl: 100, sliding: true } }, connection: connectionOf(r, DB), jitter: 0 });
    const mem = cache.category('agent_memory');
    await mem.set('m', { a: 1 });
    await raw.pexpire(mem.key('m'), 5_000);
    expect(await mem.get('m')).toEqual({ a: 1 });
    expect(await raw.pttl(mem.key('m'))).toBeGreaterThan(90_000);
    await raw.pexpire(mem.key('m'), 5_000);
    expect(await mem.mget(['m', 'x'])).toEqual([{ a: 1 }, undefined]);
    expect(await raw.pttl(mem.key('m'))).toBeGreaterThan(90_000);
    await cache.clear();
    await cache.close();
  });
});
