import { beforeEach, describe, expect, it } from 'vitest';
import { scanKeys } from '@aicache/test-redis';
import { ADMIN_TOKEN, docs, useFixture, wipe } from './helpers.js';

const DB = 6;
const f = useFixture(DB);

beforeEach(async () => {
  await wipe(f.raw);
  for (const d of [docs.refunds, docs.shipping]) {
    expect((await f.app.inject({ method: 'POST', url: '/api/v1/documents', payload: d })).statusCode).toBe(201);
  }
});

const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
const search = (payload: object) => f.app.inject({ method: 'POST', url: '/api/v1/search', payload });
const invalidate = (pattern: string, headers: Record<string, string> = auth) =>
  f.app.inject({ method: 'DELETE', url: `/api/v1/cache/search/${pattern}`, headers });
const slugs = async () => (await scanKeys(f.raw, 'retrieval-proxy:search_results:*')).map((k) => k.split(':')[4]).sort();

describe('DELETE /api/v1/cache/search/:pattern', () => {
  it('removes only the search entries whose query slug matches', async () => {
    await search({ query: 'refund policy' });
    await search({ query: 'refund policy', filters: { lang: 'en' } });
    await search({ query: 'late refund' });
    await search({ query: 'shipping times' });
    await f.app.inject({ method: 'POST', url: '/api/v1/context', payload: { query: 'refund policy' } });
    expect(await slugs()).toEqual(['late-refund', 'refund-policy', 'refund-policy', 'shipping-times']);

    const exact = await invalidate('late-refund');
    expect(exact.statusCode).toBe(200);
    expect(exact.json()).toEqual({ pattern: 'late-refund', removed: 1 });
    expect(await slugs()).toEqual(['refund-policy', 'refund-policy', 'shipping-times']);

    const glob = await invalidate('*REFUND*');
    expect(glob.json()).toEqual({ pattern: '*REFUND*', removed: 2 });
    expect(await slugs()).toEqual(['shipping-times']);
    expect(await scanKeys(f.raw, 'retrieval-proxy:context_bundles:*')).toHaveLength(1);
    expect((await f.app.inject({ url: '/api/v1/documents/refund-policy' })).statusCode).toBe(200);

    expect((await search({ query: 'refund policy' })).headers['x-cache']).toBe('miss');
    expect((await search({ query: 'shipping times' })).headers['x-cache']).toBe('hit');
  });

  it('matches the whole slug: a bare word does not remove longer queries containing it', async () => {
    await search({ query: 'refund policy' });
    expect((await invalidate('refund')).json().removed).toBe(0);
    // '?' must be sent percent-encoded, or it starts the query string.
    expect((await invalidate('refund-%3Folicy')).json()).toEqual({ pattern: 'refund-?olicy', removed: 1 });
  });

  it('needs the admin bearer token', async () => {
    await search({ query: 'refund policy' });
    expect((await invalidate('*', {})).statusCode).toBe(401);
    expect((await invalidate('*', { authorization: 'Bearer wrong' })).statusCode).toBe(401);
    expect(await slugs()).toEqual(['refund-policy']);
  });

  it.each([
    ['a colon', 'q%3Arefund'],
    ['a dot', 'refund.policy'],
    ['a space', 'refund%20policy'],
    ['a brace', 'refund%7Bx%7D'],
    ['201 characters', 'a'.repeat(201)],
  ])('rejects a pattern with %s with 400, removing nothing', async (_name, pattern) => {
    await search({ query: 'refund policy' });
    const res = await invalidate(pattern);
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toMatch(/pattern/);
    expect(await slugs()).toEqual(['refund-policy']);
  });
});
