import { describe, expect, it } from 'vitest';
import { Type, type Static } from 'typebox';
import type { FastifyInstance } from 'fastify';
import { BaseConfig, PeerClient, createService, errors, loadConfig, runServer, type ServiceApp } from '../src/index.js';

// Mirrors how services use the kit (the contract in /tmp/contracts.md); mostly a compile-time check.
const Schema = Type.Object({
  ...BaseConfig.properties,
  PORT: Type.Number({ default: 8002 }),
  REDIS_DB_RETRIEVAL_PROXY: Type.Integer({ default: 1, minimum: 0, maximum: 15 }),
  MULTIMODAL_WORKER_URL: Type.String({ default: 'http://127.0.0.1:8001' }),
});
type Config = Static<typeof Schema>;

async function buildApp(config: Config): Promise<FastifyInstance> {
  const app = await createService({ name: 'retrieval-proxy', version: '0.1.0', config, logger: false });
  const worker = new PeerClient({ name: 'multimodal-worker', baseUrl: config.MULTIMODAL_WORKER_URL, timeoutMs: config.PEER_TIMEOUT_MS, retries: config.PEER_RETRIES });
  app.addHook('onClose', () => worker.close());
  app.addReadinessCheck('multimodal-worker', async () => ({ ok: await worker.ready(), degraded: false }), { required: false });
  app.get('/api/v1/things/:id', { schema: { params: Type.Object({ id: Type.String() }) } }, async (req) => {
    const id: string = req.params.id;
    if (id === 'x') throw errors.NotFound('thing', id);
    return { id };
  });
  return app;
}

describe('contract usage', () => {
  it('builds an app the way services do, and it is a plain FastifyInstance for runServer', async () => {
    const config = loadConfig(Schema, { env: { NODE_ENV: 'test', MULTIMODAL_WORKER_URL: 'http://127.0.0.1:1' } });
    const app = await buildApp(config);
    const typed: ServiceApp = app as ServiceApp;
    expect(typeof runServer).toBe('function');
    const res = await typed.inject('/api/v1/things/x');
    expect(res.json()).toMatchObject({ code: 'NOT_FOUND' });
    expect((await app.inject('/ready')).json()).toMatchObject({ status: 'degraded' });
    await app.close();
  });
});

describe('runServer', () => {
  it('listens on HOST:PORT and returns the address; closing the app stops it', async () => {
    const config = loadConfig(Schema, { env: { NODE_ENV: 'test', LOG_LEVEL: 'silent', HOST: '127.0.0.1', PORT: '0' } });
    const app = await buildApp(config);
    const address = await runServer(app, config);
    expect(address).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${address}/health`, { headers: { 'x-request-id': 'over-the-wire' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe('over-the-wire');
    await app.close();
    await expect(fetch(`${address}/health`)).rejects.toThrow();
  });

  it('serves an app that was already made ready (regression: runServer added a hook after ready)', async () => {
    const config = loadConfig(Schema, { env: { NODE_ENV: 'test', LOG_LEVEL: 'silent', HOST: '127.0.0.1', PORT: '0' } });
    const app = await buildApp(config);
    await app.ready();
    const address = await runServer(app, config);
    expect((await fetch(`${address}/health`)).status).toBe(200);
    await app.close();
  });
});
