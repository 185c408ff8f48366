import { describe, expect, it } from 'vitest';
import { CacheConfigError, createRedisClient, isCluster, parseNodes, quitOrDisconnect, redisTopologyFromEnv } from '../src/index.js';

describe('redisTopologyFromEnv', () => {
  it('is one server when no Sentinel or Cluster variable is set', () => {
    expect(redisTopologyFromEnv({ REDIS_HOST: 'redis', REDIS_PORT: '6380' })).toEqual({ mode: 'single' });
  });

  it('reads a Sentinel set with its primary name and credentials', () => {
    expect(
      redisTopologyFromEnv({ REDIS_SENTINELS: 's1:26379, [::1]:26380', REDIS_SENTINEL_NAME: 'cache', REDIS_SENTINEL_PASSWORD: 'pw' }),
    ).toEqual({ mode: 'sentinel', sentinels: [{ host: 's1', port: 26379 }, { host: '::1', port: 26380 }], name: 'cache', sentinelPassword: 'pw' });
  });

  it('reads Cluster nodes under another prefix', () => {
    expect(redisTopologyFromEnv({ REDIS_STATE_CLUSTER_NODES: 'a:7000,b:7001' }, 'REDIS_STATE_')).toEqual({
      mode: 'cluster',
      nodes: [{ host: 'a', port: 7000 }, { host: 'b', port: 7001 }],
    });
  });

  const refused: Array<[string, Record<string, string>, string, RegExp]> = [
    ['Sentinel and Cluster together', { REDIS_SENTINELS: 'a:1', REDIS_SENTINEL_NAME: 'm', REDIS_CLUSTER_NODES: 'b:2' }, 'REDIS_CLUSTER_NODES', /choose Sentinel or Cluster/],
    ['Sentinels without a name', { REDIS_SENTINELS: 'a:1' }, 'REDIS_SENTINEL_NAME', /REDIS_SENTINEL_NAME/],
    ['a name without Sentinels', { REDIS_SENTINEL_NAME: 'm' }, 'REDIS_SENTINELS', /REDIS_SENTINELS/],
    ['a URL beside Cluster nodes', { REDIS_URL: 'redis://x:1', REDIS_CLUSTER_NODES: 'b:2' }, 'REDIS_URL', /names one server/],
    ['a host beside Sentinels', { REDIS_HOST: 'x', REDIS_SENTINELS: 'a:1', REDIS_SENTINEL_NAME: 'm' }, 'REDIS_HOST', /leave it unset/],
    ['a node without a port', { REDIS_CLUSTER_NODES: 'a:7000,b' }, 'REDIS_CLUSTER_NODES', /host:port, got "b"/],
    ['a port out of range', { REDIS_CLUSTER_NODES: 'a:70000' }, 'REDIS_CLUSTER_NODES', /host:port/],
    ['an empty list', { REDIS_CLUSTER_NODES: ' , ' }, 'REDIS_CLUSTER_NODES', /names no host:port/],
  ];
  for (const [what, env, variable, message] of refused) {
    it(`refuses ${what}, naming ${variable}`, () => {
      let err: unknown;
      try {
        redisTopologyFromEnv(env);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(CacheConfigError);
      expect((err as CacheConfigError).variable).toBe(variable);
      expect((err as Error).message).toMatch(message);
    });
  }

  it('never echoes a Sentinel password in a refusal', () => {
    expect(() => redisTopologyFromEnv({ REDIS_SENTINEL_PASSWORD: 's3cret', REDIS_SENTINEL_NAME: 'm' })).toThrow(/^(?!.*s3cret)/s);
  });
});

describe('createRedisClient', () => {
  it('makes a Cluster client for Cluster nodes and a plain one otherwise', async () => {
    const cluster = createRedisClient({ mode: 'cluster', nodes: parseNodes('X', '127.0.0.1:1') }, { db: 3, lazyConnect: true }, { lazyConnect: true });
    const single = createRedisClient({ mode: 'single' }, { lazyConnect: true });
    expect(isCluster(cluster)).toBe(true);
    expect(isCluster(single)).toBe(false);
    await quitOrDisconnect(cluster);
    await quitOrDisconnect(single);
  });
});
