import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisCluster, startRedisSentinel, type RedisClusterHandle, type RedisSentinelSet } from '@aicache/test-redis';
import { Cluster, Redis } from 'ioredis';
import type { ServiceApp } from '@aicache/service-kit';
import { docs, makeApp, startFakeWorker, type FakeWorker } from './helpers.js';
import { loadConfig } from '../src/config.js';

/**
 * The document index and the search cache on a Redis Cluster and through Sentinel, each chosen by env only
 * (REDIS_CLUSTER_NODES, REDIS_SENTINELS + REDIS_SENTINEL_NAME), as an operator would.
 */
interface Mode {
  name: 'cluster' | 'sentinel';
  start(): Promise<{ env: Record<string, string>; raw: Redis | Cluster; stop(): Promise<void> }>;
  /** Where the document index lives on this mode. */
  prefix: string;
}

const modes: Mode[] = [
  {
    name: 'cluster',
    prefix: 'state:{retrieval-proxy}',
    async start() {
      const cluster: RedisClusterHandle = await startRedisCluster();
      const raw = new Cluster(cluster.nodes);
      return { env: { REDIS_CLUSTER_NODES: cluster.nodesEnv }, raw, stop: async () => (raw.disconnect(), cluster.stop()) };
    },
  },
  {
    name: 'sentinel',
    prefix: 'state:retrieval-proxy',
    async start() {
      const set: RedisSentinelSet = await startRedisSentinel();
      const raw = new Redis({ sentinels: set.sentinelNodes, name: set.name, db: 1 });
      return { env: { REDIS_SENTINELS: set.sentinelsEnv, REDIS_SENTINEL_NAME: set.name }, raw, stop: async () => (raw.disconnect(), set.stop()) };
    },
  },
];

describe.each(modes)('retrieval-proxy on a $name', (mode) => {
  let worker: FakeWorker;
  let app: ServiceApp;
  let env: Awaited<ReturnType<Mode['start']>>;

  beforeAll(async () => {
    worker = await startFakeWorker();
    env = await mode.start();
    app = await makeApp(
      loadConfig({ NODE_ENV: 'test', AUTH_MODE: 'off', LOG_LEVEL: 'silent', MULTIMODAL_WORKER_URL: worker.url, CACHE_ADMIN_TOKEN: 'token', ...env.env }),
    );
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await env?.stop();
    await worker?.close();
  });

  it('is ready, with the cache and the document index answering', async () => {
    const res = await app.inject('/ready');
    expect(res.json()).toMatchObject({ status: 'ready', checks: { redis: { ok: true }, state: { ok: true } } });
  });

  const search = (query = 'refund within 30 days') => app.inject({ method: 'POST', url: '/api/v1/search', payload: { query, limit: 1 } });

  it('ingests, lists, searches and deletes documents', async () => {
    for (const d of [docs.refunds, docs.shipping]) {
      expect((await app.inject({ method: 'POST', url: '/api/v1/documents', payload: d })).statusCode).toBe(201);
    }
    const list = (await app.inject('/api/v1/documents')).json();
    expect(list.total).toBe(2);

    const first = await search();
    expect(first.statusCode).toBe(200);
    expect(first.json().results[0].documentId).toBe('refund-policy');

    expect((await app.inject({ method: 'DELETE', url: '/api/v1/documents/refund-policy' })).statusCode).toBe(204);
    expect((await app.inject('/api/v1/documents/refund-policy')).statusCode).toBe(404);
    const after = await search();
    expect(after.json().results[0].documentId).toBe('shipping');
  });

  it('caches a search answer: miss, then hit', async () => {
    const first = await search('international shipping customs');
    expect(first.headers['x-cache']).toBe('miss');
    const second = await search('international shipping customs');
    expect(second.headers['x-cache']).toBe('hit');
    expect(second.body).toBe(first.body);
  });

  it('keeps the index under the mode\'s names (one slot per service on a Cluster)', async () => {
    const version = await env.raw.get(`${mode.prefix}:corpus_version`);
    expect(Number(version)).toBeGreaterThanOrEqual(3);
    expect(await env.raw.exists(`${mode.prefix}:doc:shipping`)).toBe(1);
    expect(await env.raw.zrange(`${mode.prefix}:docs`, '0', '-1')).toEqual(['shipping']);
  });

  it('serves the cache stats route', async () => {
    const res = await app.inject('/api/v1/cache/stats');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ service: 'retrieval-proxy' });
  });
});
