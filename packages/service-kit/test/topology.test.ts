import { describe, expect, it } from 'vitest';
import { Type } from 'typebox';
import { BaseConfig, ConfigError, loadConfig, redisTopologiesOfConfig } from '../src/index.js';

const Schema = Type.Object({
  ...BaseConfig.properties,
  REDIS_DB_RETRIEVAL_PROXY: Type.Integer({ default: 1, minimum: 0, maximum: 15 }),
});

function refusal(env: Record<string, string>): ConfigError {
  try {
    loadConfig(Schema, { env });
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error(`accepted ${JSON.stringify(env)}`);
}

const topologies = (env: Record<string, string>) => redisTopologiesOfConfig(loadConfig(Schema, { env }));

describe('connection modes from env', () => {
  it('one server for both connections when no mode variable is set', () => {
    expect(topologies({})).toEqual({ cache: { mode: 'single' }, state: { mode: 'single' }, stateFollowsCache: true });
  });

  it('the state connection follows a cache Cluster or Sentinel set when no REDIS_STATE_* is set', () => {
    const cluster = topologies({ REDIS_CLUSTER_NODES: '127.0.0.1:7000,127.0.0.1:7001' });
    expect(cluster.cache).toEqual({ mode: 'cluster', nodes: [{ host: '127.0.0.1', port: 7000 }, { host: '127.0.0.1', port: 7001 }] });
    expect(cluster.state).toEqual(cluster.cache);
    const sentinel = topologies({ REDIS_SENTINELS: '127.0.0.1:26379', REDIS_SENTINEL_NAME: 'aicache', REDIS_SENTINEL_PASSWORD: 's3cret' });
    expect(sentinel.state).toEqual({ mode: 'sentinel', sentinels: [{ host: '127.0.0.1', port: 26379 }], name: 'aicache', sentinelPassword: 's3cret' });
    expect(sentinel.stateFollowsCache).toBe(true);
  });

  it('REDIS_STATE_* gives the state its own place: a Sentinel set, a Cluster or one server beside a cache Cluster', () => {
    const own = topologies({ REDIS_CLUSTER_NODES: '10.0.0.1:7000', REDIS_STATE_SENTINELS: '10.0.0.2:26379', REDIS_STATE_SENTINEL_NAME: 'state' });
    expect(own.cache.mode).toBe('cluster');
    expect(own.state).toEqual({ mode: 'sentinel', sentinels: [{ host: '10.0.0.2', port: 26379 }], name: 'state' });
    expect(topologies({ REDIS_STATE_CLUSTER_NODES: '10.0.0.3:7000' })).toMatchObject({ cache: { mode: 'single' }, state: { mode: 'cluster' }, stateFollowsCache: false });
    expect(topologies({ REDIS_CLUSTER_NODES: '10.0.0.1:7000', REDIS_STATE_URL: 'redis://10.0.0.4:6379' })).toMatchObject({
      cache: { mode: 'cluster' },
      state: { mode: 'single' },
      stateFollowsCache: false,
    });
  });

  it('refuses at boot the combinations that cannot mean one thing, naming the variables', () => {
    const cases: Array<[Record<string, string>, string, RegExp]> = [
      [{ REDIS_CLUSTER_NODES: '127.0.0.1:7000', REDIS_SENTINELS: '127.0.0.1:26379', REDIS_SENTINEL_NAME: 'x' }, 'REDIS_CLUSTER_NODES', /REDIS_SENTINELS and REDIS_CLUSTER_NODES are both set/],
      [{ REDIS_CLUSTER_NODES: '127.0.0.1:7000', REDIS_HOST: 'redis' }, 'REDIS_HOST', /REDIS_HOST names one server, but REDIS_CLUSTER_NODES is set/],
      [{ REDIS_SENTINELS: '127.0.0.1:26379', REDIS_URL: 'redis://redis:6379' }, 'REDIS_URL', /REDIS_URL names one server, but REDIS_SENTINELS is set/],
      [{ REDIS_SENTINELS: '127.0.0.1:26379' }, 'REDIS_SENTINEL_NAME', /REDIS_SENTINEL_NAME .* is not/],
      [{ REDIS_STATE_SENTINEL_NAME: 'state' }, 'REDIS_STATE_SENTINELS', /REDIS_STATE_SENTINEL_NAME is set but REDIS_STATE_SENTINELS/],
      [{ REDIS_STATE_CLUSTER_NODES: '127.0.0.1:7000', REDIS_STATE_URL: 'redis://redis:6379' }, 'REDIS_STATE_URL', /REDIS_STATE_URL names one server, but REDIS_STATE_CLUSTER_NODES/],
      [{ REDIS_CLUSTER_NODES: 'redis-a' }, 'REDIS_CLUSTER_NODES', /comma-separated list of host:port, got "redis-a"/],
      [{ REDIS_SENTINEL_PASSWORD: 'pw' }, 'REDIS_SENTINEL_PASSWORD', /REDIS_SENTINEL_PASSWORD is set but REDIS_SENTINELS is not/],
      [{ REDIS_STATE_SENTINEL_USERNAME: 'u' }, 'REDIS_STATE_SENTINEL_USERNAME', /REDIS_STATE_SENTINELS is not/],
    ];
    for (const [env, variable, message] of cases) {
      const err = refusal(env);
      expect(err.issues.map((i) => i.variable), JSON.stringify(env)).toEqual([variable]);
      expect(err.message).toMatch(message);
    }
  });

  it('never shows a Sentinel password in a refusal', () => {
    const err = refusal({ REDIS_SENTINELS: '127.0.0.1:26379', REDIS_SENTINEL_NAME: 'x', REDIS_CLUSTER_NODES: '127.0.0.1:7000', REDIS_SENTINEL_PASSWORD: 'hunter2-secret' });
    expect(err.message).not.toContain('hunter2-secret');
  });

  it('on a Cluster, REDIS_DB_<SERVICE> set to another index than 0 or its default refuses boot; the default is accepted', () => {
    const err = refusal({ REDIS_CLUSTER_NODES: '127.0.0.1:7000', REDIS_DB_RETRIEVAL_PROXY: '5' });
    expect(err.issues).toEqual([
      {
        variable: 'REDIS_DB_RETRIEVAL_PROXY',
        message: expect.stringMatching(/REDIS_DB_RETRIEVAL_PROXY=5 asks for DB 5, but REDIS_CLUSTER_NODES is set .* only DB 0.*'retrieval-proxy:' key prefix/),
      },
    ]);
    expect(refusal({ REDIS_STATE_CLUSTER_NODES: '127.0.0.1:7000', REDIS_DB_RETRIEVAL_PROXY: '3' }).message).toMatch(/REDIS_STATE_CLUSTER_NODES is set/);
    for (const db of ['0', '1']) {
      expect(loadConfig(Schema, { env: { REDIS_CLUSTER_NODES: '127.0.0.1:7000', REDIS_DB_RETRIEVAL_PROXY: db } }).REDIS_DB_RETRIEVAL_PROXY).toBe(Number(db));
    }
    // One server and Sentinel keep their DBs: any index is fine there.
    expect(loadConfig(Schema, { env: { REDIS_SENTINELS: '127.0.0.1:26379', REDIS_SENTINEL_NAME: 'x', REDIS_DB_RETRIEVAL_PROXY: '5' } }).REDIS_DB_RETRIEVAL_PROXY).toBe(5);
  });
});
