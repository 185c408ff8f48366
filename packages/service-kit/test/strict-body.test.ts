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
});
