import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { startRedisServer, uniqueName, type RedisServer } from '@aicache/test-redis';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { LocalHashProvider } from '../src/providers/local-hash.js';
import { CountingProvider } from './helpers.js';

// Its own redis-server: this file kills it.
let server: RedisServer;
let app: FastifyInstance;
const provider = new CountingProvider(new LocalHashProvider());

beforeAll(async () => {
  server = await startRedisServer();
  const config = loadConfig({
    NODE_ENV: 'test',
    AUTH_MODE: 'off',
    LOG_LEVEL: 'silent',
    REDIS_URL: server.url,
    REDIS_DB_MULTIMODAL_WORKER: '7',
    SERVICE_NAME: uniqueName('mmw'),
    CACHE_COMMAND_TIMEOUT_MS: '1000',
  });
  app = await buildApp(config, { providers: [provider], logger: false, underPressure: false, adminRateLimit: false });
});

afterAll(async () => {
  await app?.close();
  await server?.stop();
});

describe('when Redis goes away', () => {
  it('keeps answering from the model, uncached, and reports itself degraded but ready', async () => {
    const first = await app.inject({ method: 'POST', url: '/api/v1/embeddings', payload: { input: ['a', 'b'] } });
    expect(first.statusCode).toBe(200);
    expect((await app.inject({ method: 'POST', url: '/api/v1/embeddings', payload: { input: ['a', 'b'] } })).headers['x-cache']).toBe('hit');

    await server.kill();

    provider.reset();
    const res = await app.inject({ method: 'POST', url: '/api/v1/embeddings', payload: { input: ['a', 'b', 'c'] } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-cache']).toBe('miss');
    expect(provider.computed).toBe(3);
    expect(res.json<{ data: Array<{ embedding: number[] }> }>().data[0]!.embedding).toEqual(first.json<{ data: Array<{ embedding: number[] }> }>().data[0]!.embedding);

    const processed = await app.inject({ method: 'POST', url: '/api/v1/process/text', payload: { text: 'still works without redis' } });
    expect(processed.statusCode).toBe(200);
    expect(processed.headers['x-cache']).toBe('miss');

    const models = await app.inject({ method: 'GET', url: '/api/v1/models' });
    expect(models.statusCode).toBe(200);

    const ready = await app.inject({ method: 'GET', url: '/ready' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toMatchObject({ status: 'degraded', checks: { redis: { ok: false } } });
  });
});
