import { describe, expect, it } from 'vitest';
import { scanKeys } from '@aicache/test-redis';
import { docs, useFixture } from './helpers.js';

const DB = 8;
const f = useFixture(DB);

const ingest = (payload: object) => f.app.inject({ method: 'POST', url: '/api/v1/documents', payload });
const post = (url: string, payload: object) => f.app.inject({ method: 'POST', url, payload });

/** What a state Redis that restarted without its data looks like: every state key gone, the cache intact. */
async function loseState(): Promise<void> {
  const keys = await scanKeys(f.raw, 'state:retrieval-proxy:*');
  expect(keys.length).toBeGreaterThan(0);
  await f.raw.del(...keys);
}

describe('a state Redis that lost its data', () => {
  it('serves no answer cached before the reset, though the corpus version starts again at 1', async () => {
    const first = await ingest(docs.refunds);
    expect(first.json().corpusVersion).toBe(1);
    const search = { query: 'refund within 30 days' };
    const context = { query: 'refund within 30 days', limit: 3 };
    expect((await post('/api/v1/search', search)).headers['x-cache']).toBe('miss');
    const cached = await post('/api/v1/search', search);
    expect(cached.headers['x-cache']).toBe('hit');
    expect(cached.json().results.map((r: { documentId: string }) => r.documentId)).toEqual(['refund-policy']);
    expect((await post('/api/v1/context', context)).headers['x-cache']).toBe('miss');

    await loseState();

    // Other documents, and the same version number as before the reset.
    const second = await ingest(docs.german);
    expect(second.statusCode).toBe(201);
    expect(second.json().corpusVersion).toBe(1);

    const after = await post('/api/v1/search', search);
    expect(after.statusCode).toBe(200);
    expect(after.headers['x-cache']).toBe('miss');
    expect(after.json().results.map((r: { documentId: string }) => r.documentId)).toEqual(['rueckgabe']);

    const bundle = await post('/api/v1/context', context);
    expect(bundle.headers['x-cache']).toBe('miss');
    expect(bundle.json().text).not.toContain('original payment method');
    expect(bundle.json().text).toContain('Rückerstattung');
  });
});
