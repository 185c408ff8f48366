import { beforeEach, describe, expect, it } from 'vitest';
import { scanKeys } from '@aicache/test-redis';
import { docs, useFixture, wipe } from './helpers.js';

const DB = 5;
const f = useFixture(DB);

const longText = Array.from({ length: 30 }, (_, i) => `Refund rule ${i}: a refund request number ${i} is answered within ${i + 1} days.`).join(' ');

beforeEach(async () => {
  await wipe(f.raw);
  for (const d of [docs.refunds, docs.shipping, { id: 'refund-rules', title: 'Refund rules', text: longText, chunkSize: 300, chunkOverlap: 50 }]) {
    expect((await f.app.inject({ method: 'POST', url: '/api/v1/documents', payload: d })).statusCode).toBe(201);
  }
  f.worker.calls.length = 0;
});

const context = (payload: object) => f.app.inject({ method: 'POST', url: '/api/v1/context', payload });

describe('POST /api/v1/context', () => {
  it('merges the top sections with [n] markers, each section carrying citation n', async () => {
    const res = await context({ query: 'refund request', limit: 3 });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.query).toBe('refund request');
    expect(body.sections).toHaveLength(3);
    expect(Object.keys(body).sort()).toEqual(['query', 'sections', 'text', 'truncated']);
    body.sections.forEach((s: { citation: { id: number }; text: string }, i: number) => {
      expect(s.citation.id).toBe(i + 1);
      expect(body.text).toContain(`[${i + 1}] ${s.text}`);
    });
    expect(body.text.length).toBeLessThanOrEqual(4000);
    expect(body.truncated).toBe(false);
    const withSource = body.sections.find((s: { citation: { documentId: string } }) => s.citation.documentId === 'refund-policy');
    if (withSource) expect(withSource.citation.source).toBe('handbook/refunds.md');
  });

  it('stays within maxChars and says when it cut', async () => {
    const body = (await context({ query: 'refund request', limit: 10, maxChars: 400 })).json();
    expect(body.text.length).toBeLessThanOrEqual(400);
    expect(body.truncated).toBe(true);
    expect(body.text.startsWith('[1] ')).toBe(true);
  });

  it('caches bundles per request and corpus version', async () => {
    const a = await context({ query: 'refund request' });
    expect(a.headers['x-cache']).toBe('miss');
    const b = await context({ query: '  Refund Request' });
    expect(b.headers['x-cache']).toBe('hit');
    expect(b.body).toBe(a.body);
    const c = await context({ query: 'refund request', maxChars: 500 });
    expect(c.headers['x-cache']).toBe('miss');
    const keys = await scanKeys(f.raw, 'retrieval-proxy:context_bundles:*');
    expect(keys).toHaveLength(2);
    for (const k of keys) expect(k).toMatch(/^retrieval-proxy:context_bundles:q:default:refund-request:v\d+\.[0-9a-f]{16}:[0-9a-f]{16}$/);
    expect(await scanKeys(f.raw, 'retrieval-proxy:search_results:*')).toEqual([]);

    expect((await f.app.inject({ method: 'DELETE', url: '/api/v1/documents/refund-rules' })).statusCode).toBe(204);
    const d = await context({ query: 'refund request' });
    expect(d.headers['x-cache']).toBe('miss');
    expect(d.json().sections.map((s: { citation: { documentId: string } }) => s.citation.documentId)).not.toContain('refund-rules');
  });

  it.each([
    ['a missing query', {}, /query/],
    ['maxChars below 200', { query: 'x', maxChars: 100 }, /maxChars/],
    ['maxChars above 100000', { query: 'x', maxChars: 100_001 }, /maxChars/],
    ['limit 0', { query: 'x', limit: 0 }, /limit/],
    ['bad filters', { query: 'x', filters: { lang: null } }, /filters/],
    ['an unknown field', { query: 'x', format: 'md' }, /unknown properties: format/],
  ])('rejects %s with 400', async (_name, payload, message) => {
    const res = await context(payload);
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toMatch(message);
    expect(f.worker.calls).toHaveLength(0);
  });
});
