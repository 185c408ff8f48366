import { describe, expect, it } from 'vitest';
import { useFixture } from './helpers.js';

const DB = 5;
const f = useFixture(DB);

describe('models', () => {
  it('lists the built-in model and caches its metadata in model_metadata', async () => {
    const res = await f.app.inject({ method: 'GET', url: '/api/v1/models' });
    expect(res.statusCode).toBe(200);
    const body = res.json<{ object: string; data: Array<Record<string, unknown>> }>();
    expect(body.object).toBe('list');
    expect(body.data).toEqual([
      expect.objectContaining({ id: 'local-hash-384', object: 'model', provider: 'local', dimensions: 384, max_input_chars: 32768 }),
    ]);
    expect(String(body.data[0]!.description)).toMatch(/lexical overlap, not meaning/);

    const key = f.app.cache.category('model_metadata').key('local-hash-384');
    expect(key).toBe(`${f.env.config.SERVICE_NAME}:model_metadata:local-hash-384`);
    expect(await f.env.inspect.exists(key)).toBe(1);
    expect(await f.env.inspect.ttl(key)).toBeGreaterThan(80_000);
  });

  it('answers one model by id', async () => {
    const res = await f.app.inject({ method: 'GET', url: '/api/v1/models/local-hash-384' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ id: 'local-hash-384', dimensions: 384 });
  });

  it('answers 404 for an unknown model, also one with slashes', async () => {
    for (const id of ['nope', 'BAAI/bge-small-en-v1.5']) {
      const res = await f.app.inject({ method: 'GET', url: `/api/v1/models/${id}` });
      expect(res.statusCode).toBe(404);
      expect(res.json()).toMatchObject({ error: { code: 'model_not_found', message: `model '${id}' not found` } });
    }
  });

  it('answers 400 for an empty or oversized id', async () => {
    expect((await f.app.inject({ method: 'GET', url: '/api/v1/models/' })).statusCode).toBe(400);
    const res = await f.app.inject({ method: 'GET', url: `/api/v1/models/${'m'.repeat(201)}` });
    expect(res.statusCode).toBe(400);
    expect(res.json<{ error: { message: string } }>().error.message).toMatch(/200 characters/);
  });
});

describe('service basics', () => {
  it('serves /health, /ready with the redis check, /metrics and the OpenAPI document', async () => {
    expect((await f.app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
    const ready = await f.app.inject({ method: 'GET', url: '/ready' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toMatchObject({ status: 'ready', checks: { redis: { ok: true } } });
    const metrics = await f.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.statusCode).toBe(200);
    const docs = await f.app.inject({ method: 'GET', url: '/docs/json' });
    expect(docs.statusCode).toBe(200);
    const paths = Object.keys(docs.json<{ paths: Record<string, unknown> }>().paths);
    expect(paths).toEqual(
      expect.arrayContaining(['/api/v1/embeddings', '/api/v1/models', '/api/v1/process/text', '/api/v1/process/file', '/api/v1/cache/file/{fileHash}']),
    );
  });

  it('shows the three categories with their TTLs in cache stats', async () => {
    const res = await f.app.inject({ method: 'GET', url: '/api/v1/cache/stats' });
    expect(res.statusCode).toBe(200);
    const cats = res.json<{ service_stats: { categories: Record<string, { ttl: number }> } }>().service_stats.categories;
    expect(Object.keys(cats).sort()).toEqual(['embeddings', 'files', 'model_metadata']);
    expect(cats.embeddings!.ttl).toBe(86_400);
  });
});
