import { beforeEach, describe, expect, it } from 'vitest';
import { scanKeys } from '@aicache/test-redis';
import { docs, useFixture, wipe } from './helpers.js';

const DB = 4;
const f = useFixture(DB);

beforeEach(async () => {
  await wipe(f.raw);
  for (const d of [docs.refunds, docs.shipping, docs.german]) {
    const res = await f.app.inject({ method: 'POST', url: '/api/v1/documents', payload: d });
    expect(res.statusCode).toBe(201);
  }
  f.worker.calls.length = 0;
});

const search = (payload: object) => f.app.inject({ method: 'POST', url: '/api/v1/search', payload });
const searchKeys = () => scanKeys(f.raw, 'retrieval-proxy:search_results:*');
const ids = (res: { json(): { results: Array<{ documentId: string }> } }) => res.json().results.map((r) => r.documentId);

describe('POST /api/v1/search', () => {
  it('ranks chunks by cosine and answers the contract shape', async () => {
    const res = await search({ query: 'refund within 30 days of purchase', limit: 2 });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/application\/json/);
    const body = res.json();
    expect(body.query).toBe('refund within 30 days of purchase');
    expect(body.results).toHaveLength(2);
    expect(body.total).toBe(3);
    expect(body.results[0]).toEqual({
      documentId: 'refund-policy',
      chunkIndex: 0,
      title: 'Refund policy',
      text: docs.refunds.text,
      score: expect.any(Number),
      metadata: docs.refunds.metadata,
      citation: { id: 1, documentId: 'refund-policy', title: 'Refund policy', source: 'handbook/refunds.md', chunkIndex: 0 },
    });
    expect(body.results[0].score).toBeGreaterThanOrEqual(body.results[1].score);
    expect(body.results[0].score).toBeLessThanOrEqual(1);
  });

  it('caches the answer: miss then hit, stored under q:<tenant>:<slug>:v<version>.<epoch>:<hash> with the category TTL', async () => {
    const first = await search({ query: 'Refund   POLICY ' });
    expect(first.headers['x-cache']).toBe('miss');
    expect(f.worker.calls).toHaveLength(1);

    const second = await search({ query: 'refund policy' });
    expect(second.headers['x-cache']).toBe('hit');
    expect(second.body).toBe(first.body);
    expect(f.worker.calls).toHaveLength(1);

    const version = await f.raw.get('state:retrieval-proxy:corpus_version');
    const epoch = await f.raw.get('state:retrieval-proxy:corpus_epoch');
    expect(epoch).toMatch(/^[0-9a-f]{16}$/);
    const keys = await searchKeys();
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatch(new RegExp(`^retrieval-proxy:search_results:q:default:refund-policy:v${version}\\.${epoch}:[0-9a-f]{16}$`));
    const ttl = await f.raw.ttl(keys[0] as string);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(3600 * 1.05);
  });

  it('gives requests that differ in any filter their own cache entry', async () => {
    const plain = await search({ query: 'refund' });
    const de = await search({ query: 'refund', filters: { lang: 'de' } });
    const en = await search({ query: 'refund', filters: { lang: 'en' } });
    const both = await search({ query: 'refund', filters: { lang: ['en', 'de'], team: 'billing' } });
    for (const r of [plain, de, en, both]) expect(r.headers['x-cache']).toBe('miss');
    expect(ids(de)).toEqual(['rueckgabe']);
    expect(ids(en).sort()).toEqual(['refund-policy', 'shipping']);
    expect(ids(both).sort()).toEqual(['refund-policy', 'rueckgabe']);
    expect(await searchKeys()).toHaveLength(4);

    // Same meaning, other spelling: key order, array order, duplicates.
    const again = await search({ query: 'REFUND', filters: { team: 'billing', lang: ['de', 'en', 'de'] } });
    expect(again.headers['x-cache']).toBe('hit');
    expect(again.body).toBe(both.body);
    expect(await searchKeys()).toHaveLength(4);
  });

  it('filters by string[] metadata, numbers, booleans, documentId and source', async () => {
    expect(ids(await search({ query: 'policy', filters: { tags: 'money' } }))).toEqual(['refund-policy']);
    expect(ids(await search({ query: 'policy', filters: { version: 1 } })).sort()).toEqual(['rueckgabe', 'shipping']);
    expect(ids(await search({ query: 'policy', filters: { version: '1' } }))).toEqual([]);
    expect(ids(await search({ query: 'policy', filters: { documentId: ['shipping', 'nope'] } }))).toEqual(['shipping']);
    expect(ids(await search({ query: 'policy', filters: { source: 'handbook/refunds.md' } }))).toEqual(['refund-policy']);
  });

  it('applies limit and scoreThreshold', async () => {
    expect((await search({ query: 'refund', limit: 1 })).json().results).toHaveLength(1);
    const strict = (await search({ query: 'refund', scoreThreshold: 0.99 })).json();
    expect(strict.results).toEqual([]);
    expect(strict.total).toBe(0);
    const loose = (await search({ query: 'refund', scoreThreshold: -1 })).json();
    expect(loose.total).toBe(3);
  });

  it('never answers from the old corpus after an ingest or a delete', async () => {
    const query = { query: 'warranty claims for broken hardware' };
    const before = await search(query);
    expect(ids(before)).not.toContain('warranty');
    expect((await search(query)).headers['x-cache']).toBe('hit');

    const put = await f.app.inject({
      method: 'POST',
      url: '/api/v1/documents',
      payload: { id: 'warranty', title: 'Warranty', text: 'Warranty claims for broken hardware are handled within two years.' },
    });
    expect(put.statusCode).toBe(201);
    const afterIngest = await search(query);
    expect(afterIngest.headers['x-cache']).toBe('miss');
    expect(ids(afterIngest)[0]).toBe('warranty');

    expect((await f.app.inject({ method: 'DELETE', url: '/api/v1/documents/warranty' })).statusCode).toBe(204);
    const afterDelete = await search(query);
    expect(afterDelete.headers['x-cache']).toBe('miss');
    expect(ids(afterDelete)).not.toContain('warranty');
  });

  const bad: Array<[string, unknown, RegExp]> = [
    ['a missing query', {}, /query/],
    ['an empty query', { query: '' }, /query/],
    ['a whitespace-only query', { query: '   ' }, /query/],
    ['an oversize query', { query: 'q'.repeat(2001) }, /query/],
    ['a query of wrong type', { query: 42 }, /query/],
    ['limit 0', { query: 'x', limit: 0 }, /limit/],
    ['limit 51', { query: 'x', limit: 51 }, /limit/],
    ['limit as a string', { query: 'x', limit: '5' }, /limit/],
    ['a fractional limit', { query: 'x', limit: 2.5 }, /limit/],
    ['a nested filter value', { query: 'x', filters: { lang: { $ne: 'en' } } }, /filters/],
    ['an empty any-of list', { query: 'x', filters: { lang: [] } }, /filters/],
    ['an oversize any-of list', { query: 'x', filters: { lang: Array.from({ length: 51 }, (_, i) => `l${i}`) } }, /filters/],
    ['too many filter keys', { query: 'x', filters: Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`k${i}`, 1])) }, /filters/],
    ['a bad filter key', { query: 'x', filters: { 'a b': 1 } }, /filters/],
    ['filters as an array', { query: 'x', filters: ['lang'] }, /filters/],
    ['scoreThreshold above 1', { query: 'x', scoreThreshold: 1.5 }, /scoreThreshold/],
    ['an unknown field', { query: 'x', topK: 3 }, /unknown properties: topK/],
    ['a body that is not an object', ['x'], /object/],
  ];

  it.each(bad)('rejects %s with 400 and a clear message', async (_name, payload, message) => {
    const res = await f.app.inject({ method: 'POST', url: '/api/v1/search', payload: payload as object });
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toMatch(message);
    expect(f.worker.calls).toHaveLength(0);
    expect((await f.app.inject({ url: '/api/v1/documents' })).json().total).toBe(3);
  });
});
