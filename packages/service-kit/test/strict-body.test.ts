import { describe, expect, it } from 'vitest';
import { Type } from 'typebox';
import { createService } from '../src/index.js';

const config = { NODE_ENV: 'test', LOG_LEVEL: 'silent', BODY_LIMIT_BYTES: 1_048_576 } as const;

describe('validation', () => {
  it('rejects a number where the body schema wants a string, but coerces query strings', async () => {
    const app = await createService({ name: 'strict-test', version: '0.0.0', config, logger: false, docs: false });
    app.post('/items', { schema: { body: Type.Object({ title: Type.String() }), querystring: Type.Object({ limit: Type.Integer({ default: 10 }) }) } }, async (req) => ({
      title: req.body.title,
      limit: req.query.limit,
    }));
    const wrong = await app.inject({ method: 'POST', url: '/items', payload: { title: 42 } });
    expect(wrong.statusCode).toBe(400);
    expect(wrong.json()).toMatchObject({ code: 'VALIDATION_ERROR', message: expect.stringContaining('title') });
    const ok = await app.inject({ method: 'POST', url: '/items?limit=3', payload: { title: 'x' } });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual({ title: 'x', limit: 3 });
    await app.close();
  });

  it('names unknown properties and joins the alternatives of a union', async () => {
    const app = await createService({ name: 'strict-test', version: '0.0.0', config, logger: false, docs: false });
    app.post(
      '/embed',
      { schema: { body: Type.Object({ input: Type.Union([Type.String(), Type.Array(Type.String(), { maxItems: 2 })]) }, { additionalProperties: false }) } },
      async () => ({ ok: true }),
    );
    const extra = await app.inject({ method: 'POST', url: '/embed', payload: { input: 'x', colour: 'red' } });
    expect(extra.statusCode).toBe(400);
    expect(extra.json().message).toBe('body has unknown properties: colour');
    const union = await app.inject({ method: 'POST', url: '/embed', payload: { input: 5 } });
    expect(union.statusCode).toBe(400);
    expect(union.json().message).toBe('body/input must be string, or body/input must be array');
    await app.close();
  });

  it('rejects a query number that coerces to Infinity (regression: limit=1e400 reached Redis and became a 500)', async () => {
    const app = await createService({ name: 'strict-test', version: '0.0.0', config, logger: false, docs: false });
    app.get('/list', { schema: { querystring: Type.Object({ offset: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 0 }) }) } }, async (req) => ({ offset: req.query.offset }));
    expect((await app.inject('/list?offset=1e400')).statusCode).toBe(400);
    expect((await app.inject('/list?offset=1.5')).statusCode).toBe(400);
    expect((await app.inject('/list?offset=7')).json()).toEqual({ offset: 7 });
    await app.close();
  });
});
