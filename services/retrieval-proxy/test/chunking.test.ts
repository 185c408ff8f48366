import { beforeAll, describe, expect, it } from 'vitest';
import { useFixture, wipe } from './helpers.js';

const f = useFixture(12);

beforeAll(() => wipe(f.raw));

/** No lone surrogate anywhere (a split pair), and so no U+FFFD written in its place. */
function wellFormed(s: string): boolean {
  return !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);
}

describe('ingest chunking', () => {
  it.each([
    ['300 emoji, chunkSize 101', '😀'.repeat(300), 101, undefined],
    ['300 emoji, chunkSize 101, overlap 33', '😀'.repeat(300), 101, 33],
    ['emoji words, chunkSize 100', Array.from({ length: 200 }, (_, i) => `${'🦀'.repeat(1 + (i % 7))}x`).join(' '), 100, 50],
  ])('never splits a surrogate pair (%s): the stored chunks hold the text\'s own characters', async (_name, text, chunkSize, chunkOverlap) => {
    const res = await f.app.inject({
      method: 'POST',
      url: '/api/v1/documents',
      payload: { title: 'emoji', text, chunkSize, ...(chunkOverlap !== undefined ? { chunkOverlap } : {}) },
    });
    expect(res.statusCode, res.body).toBe(201);
    const doc = (await f.app.inject({ method: 'GET', url: `/api/v1/documents/${res.json<{ id: string }>().id}` })).json<{ chunks: Array<{ text: string }> }>();
    expect(doc.chunks.length).toBeGreaterThan(1);
    for (const c of doc.chunks) {
      expect(c.text).not.toContain('\ufffd');
      expect(wellFormed(c.text)).toBe(true);
      expect(text).toContain(c.text);
      expect(c.text.length).toBeLessThanOrEqual(chunkSize);
    }
    // The worker was asked to embed the same well-formed chunks.
    for (const input of f.worker.calls.at(-1)!.input as string[]) expect(wellFormed(input)).toBe(true);
  });

  it('accepts a small chunkSize without chunkOverlap: the default overlap scales with the size', async () => {
    const text = Array.from({ length: 60 }, (_, i) => `Sentence ${i} about small chunks.`).join(' ');
    const res = await f.app.inject({ method: 'POST', url: '/api/v1/documents', payload: { title: 'small chunks', text, chunkSize: 150 } });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json<{ chunkCount: number }>().chunkCount).toBeGreaterThan(5);
  });
});
