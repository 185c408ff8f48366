import { afterEach, describe, expect, it } from 'vitest';
import { Type } from 'typebox';
import { createService, withCacheHeader, type ServiceApp } from '../src/index.js';
import { buildTestApp, testConfig } from './helpers.js';

let app: ServiceApp | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

describe('/health', () => {
  it('answers 200 with the service name and version, even when a readiness check fails', async () => {
    app = await buildTestApp('health-svc');
    app.addReadinessCheck('redis', () => ({ ok: false, detail: 'down' }));
    const res = await app.inject('/health');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok', service: 'health-svc', version: '1.2.3', uptime_s: expect.any(Number) });
  });
});

describe('/ready', () => {
  it('is ready with no checks', async () => {
    app = await buildTestApp();
    const res = await app.inject('/ready');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ready', checks: {} });
  });

  it('is 200 ready when every check passes, with latency per check', async () => {
    app = await buildTestApp();
    app.addReadinessCheck('redis', async () => ({ ok: true, detail: 'PONG' }));
    app.addReadinessCheck('peer', async () => true);
    const res = await app.inject('/ready');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      status: 'ready',
      checks: {
        redis: { ok: true, detail: 'PONG', required: true, latency_ms: expect.any(Number) },
        peer: { ok: true, required: true, latency_ms: expect.any(Number) },
      },
    });
  });

  it('is 503 not_ready when a required check fails, throws or hangs', async () => {
    app = await buildTestApp();
    app.addReadinessCheck('ok', async () => ({ ok: true }));
    app.addReadinessCheck('redis', async () => ({ ok: false, detail: 'ECONNREFUSED' }));
    app.addReadinessCheck('throws', async () => {
      throw new Error('boom at redis://user:secret@host:6379');
    });
    app.addReadinessCheck('hangs', () => new Promise<boolean>(() => undefined), { timeoutMs: 50 });
    const res = await app.inject('/ready');
    expect(res.statusCode).toBe(503);
    const body = res.json();
    expect(body.status).toBe('not_ready');
    expect(body.checks.ok.ok).toBe(true);
    expect(body.checks.redis).toMatchObject({ ok: false, detail: 'ECONNREFUSED' });
    expect(body.checks.throws).toMatchObject({ ok: false, detail: 'boom at redis://user:***@host:6379' });
    expect(body.checks.hangs).toMatchObject({ ok: false, detail: 'timed out after 50 ms' });
  });

  it('is 200 degraded when a check reports degraded or an optional check fails', async () => {
    app = await buildTestApp();
    app.addReadinessCheck('cache', async () => ({ ok: true, degraded: true, detail: 'serving without cache' }));
    const res = await app.inject('/ready');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ status: 'degraded', checks: { cache: { ok: true, degraded: true } } });

    app.addReadinessCheck('retrieval-proxy', async () => false, { required: false });
    const res2 = await app.inject('/ready');
    expect(res2.statusCode).toBe(200);
    expect(res2.json()).toMatchObject({ status: 'degraded', checks: { 'retrieval-proxy': { ok: false, required: false } } });
  });
});

describe('/metrics', () => {
  it('exposes the HTTP histogram labelled by route pattern, not raw URL', async () => {
    app = await buildTestApp('metrics-svc');
    app.get('/items/:id', { schema: { params: Type.Object({ id: Type.String() }) } }, async (req) => ({ id: req.params.id }));
    await app.inject('/items/41');
    await app.inject('/items/42');
    const res = await app.inject('/metrics');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(res.body).toContain('# TYPE http_request_duration_seconds histogram');
    expect(res.body).toMatch(/http_request_duration_seconds_count\{service="[^"]+",method="GET",route="\/items\/:id",status_code="200"\} 2/);
    expect(res.body).not.toContain('/items/41');
  });

  it('includes default process metrics unless turned off', async () => {
    app = await createService({ name: 'm', version: '1', config: testConfig(), logger: false });
    expect((await app.inject('/metrics')).body).toContain('process_cpu_user_seconds_total');
  });

  it('keeps separate registries per app', async () => {
    app = await buildTestApp('a');
    const other = await buildTestApp('b');
    try {
      expect(app.metrics.registry).not.toBe(other.metrics.registry);
    } finally {
      await other.close();
    }
  });
});

describe('/docs', () => {
  it('/docs/json is OpenAPI 3 listing routes the service registered, with the bearerAuth scheme', async () => {
    app = await buildTestApp('docs-svc');
    app.post(
      '/api/v1/search',
      { schema: { body: Type.Object({ query: Type.String() }), response: { 200: Type.Object({ hits: Type.Array(Type.String()) }) } } },
      async () => ({ hits: [] }),
    );
    const res = await app.inject('/docs/json');
    expect(res.statusCode).toBe(200);
    const doc = res.json();
    expect(doc.openapi).toMatch(/^3\./);
    expect(doc.info).toEqual({ title: 'docs-svc', version: '1.2.3' });
    expect(doc.paths['/api/v1/search'].post.requestBody.content['application/json'].schema.properties.query).toEqual({ type: 'string' });
    expect(doc.paths['/health']).toBeDefined();
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
  });

  it('gives every operation an operationId from its method and path, unless the route names its own', async () => {
    app = await buildTestApp('docs-svc');
    const ok = async () => ({});
    app.get('/api/v1/agents/:agentId/conversations', ok);
    app.post('/api/v1/process/text', ok);
    app.delete('/api/v1/cache/search/:pattern', ok);
    app.get('/api/v1/custom', { schema: { operationId: 'readTheCustomThing' } }, ok);
    const doc = (await app.inject('/docs/json')).json();
    expect(doc.paths['/api/v1/agents/{agentId}/conversations'].get.operationId).toBe('getAgentsByAgentIdConversations');
    expect(doc.paths['/api/v1/process/text'].post.operationId).toBe('postProcessText');
    expect(doc.paths['/api/v1/cache/search/{pattern}'].delete.operationId).toBe('deleteCacheSearchByPattern');
    expect(doc.paths['/api/v1/custom'].get.operationId).toBe('readTheCustomThing');
    expect(doc.paths['/health'].get.operationId).toBe('getHealth');
    expect(doc.paths['/ready'].get.operationId).toBe('getReady');
  });

  it('refuses, when the second is registered, two routes that would share an operationId', async () => {
    app = await buildTestApp('docs-svc');
    const ok = async () => ({});
    app.get('/api/v1/a-b', ok);
    expect(() => app!.get('/api/v1/a/b', ok)).toThrow(/operationId 'getAB' of GET \/api\/v1\/a\/b is already used by GET \/api\/v1\/a-b/);
  });

  it('has a server entry, is open by default, and leaves out of `required` what has a default', async () => {
    app = await buildTestApp('docs-svc');
    app.get(
      '/api/v1/items',
      { schema: { querystring: Type.Object({ limit: Type.Integer({ default: 20 }), q: Type.String() }) } },
      async (request) => request.query,
    );
    app.post(
      '/api/v1/items',
      { schema: { body: Type.Object({ name: Type.String(), note: Type.String({ default: '' }) }), response: { 200: withCacheHeader(Type.Object({ name: Type.String(), note: Type.String() })) } } },
      async (request) => request.body,
    );
    const doc = (await app.inject('/docs/json')).json();
    expect(doc.servers).toEqual([{ url: '/', description: 'this docs-svc' }]);
    expect(doc.security).toEqual([]);
    const params = doc.paths['/api/v1/items'].get.parameters;
    expect(params.map((p: { name: string; required: boolean }) => [p.name, p.required])).toEqual([
      ['limit', false],
      ['q', true],
    ]);
    const post = doc.paths['/api/v1/items'].post;
    expect(post.requestBody.content['application/json'].schema.required).toEqual(['name']);
    expect(post.responses['200'].headers['x-cache']).toEqual({ schema: { type: 'string', enum: ['hit', 'miss'] }, description: 'Whether the cache answered: hit, miss' });
    // The document changed, not the route: the default is still filled in, and the response still serialized.
    expect((await app.inject('/api/v1/items?q=x')).json()).toEqual({ limit: 20, q: 'x' });
    expect((await app.inject({ method: 'POST', url: '/api/v1/items', payload: { name: 'n' } })).json()).toEqual({ name: 'n', note: '' });
  });

  it('/docs serves the UI', async () => {
    app = await buildTestApp();
    const res = await app.inject('/docs');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/html/);
  });
});
