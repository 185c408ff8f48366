import { createHash } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { scanKeys } from '@aicache/test-redis';
import { docs, useFixture, wipe } from './helpers.js';

const DB = 3;
const f = useFixture(DB);
/** Corpus version after the wipe before each test. */
let v0 = 0;

beforeEach(async () => {
  v0 = await wipe(f.raw);
  f.worker.calls.length = 0;
});

const ingest = (body: object) => f.app.inject({ method: 'POST', url: '/api/v1/documents', payload: body });

describe('POST /api/v1/documents', () => {
  it('chunks, embeds all chunks in one worker call (base64) and stores the document as state', async () => {
    const text = Array.from({ length: 40 }, (_, i) => `Paragraph ${i} explains refunds and returns for case ${i}.`).join(' ');
    const res = await ingest({ ...docs.refunds, text, chunkSize: 300, chunkOverlap: 50 });
    expect(res.statusCode).toBe(201);
    const body = res.json();
    expect(body).toMatchObject({ id: 'refund-policy', title: 'Refund policy', corpusVersion: v0 + 1 });
    expect(body.chunkCount).toBeGreaterThan(3);

    expect(f.worker.calls).toHaveLength(1);
    expect(f.worker.calls[0]?.encoding_format).toBe('base64');
    expect(f.worker.calls[0]?.input).toHaveLength(body.chunkCount);

    expect(await scanKeys(f.raw, 'state:retrieval-proxy:*')).toEqual([
      'state:retrieval-proxy:corpus_epoch',
      'state:retrieval-proxy:corpus_model',
      'state:retrieval-proxy:corpus_version',
      'state:retrieval-proxy:doc:refund-policy',
      'state:retrieval-proxy:docs',
      'state:retrieval-proxy:written_at',
    ]);
    expect(await f.raw.ttl('state:retrieval-proxy:doc:refund-policy')).toBe(-1);
    expect(await f.raw.get('state:retrieval-proxy:corpus_version')).toBe(String(v0 + 1));
    const vec = await f.raw.hgetBuffer('state:retrieval-proxy:doc:refund-policy', 'v:0');
    expect(vec?.length).toBe(64 * 4);
  });

  it('generates a uuid when no id is given', async () => {
    const res = await ingest({ title: 'No id', text: 'just some text' });
    expect(res.statusCode).toBe(201);
    expect(res.json().id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('gives a lone surrogate its own content hash (not that of U+FFFD), and well-formed text the sha256 of its UTF-8', async () => {
    const lone = (await ingest({ id: 'lone', title: 'Lone', text: 'before \ud800 after' })).json();
    const replacement = (await ingest({ id: 'replacement', title: 'Replacement', text: 'before \ufffd after' })).json();
    const plain = (await ingest({ id: 'plain', title: 'Plain', text: 'héllo' })).json();
    const hashOf = async (id: string) => (await f.app.inject({ url: `/api/v1/documents/${id}` })).json().contentHash as string;
    expect(lone.id).toBe('lone');
    expect(replacement.id).toBe('replacement');
    expect(await hashOf('lone')).not.toBe(await hashOf('replacement'));
    expect(await hashOf('plain')).toBe(createHash('sha256').update(Buffer.from('héllo', 'utf8')).digest('hex'));
    expect(plain.id).toBe('plain');
  });

  it('replaces a document re-ingested under the same id and bumps the version', async () => {
    await ingest(docs.refunds);
    const res = await ingest({ ...docs.refunds, title: 'Refunds v2', text: 'Short new text.' });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ chunkCount: 1, corpusVersion: v0 + 2 });
    const got = (await f.app.inject({ url: '/api/v1/documents/refund-policy' })).json();
    expect(got.title).toBe('Refunds v2');
    expect(got.chunks).toEqual([{ index: 0, text: 'Short new text.' }]);
    expect((await f.app.inject({ url: '/api/v1/documents' })).json().total).toBe(1);
  });

  it('accepts a worker that answers floats instead of base64', async () => {
    f.worker.forceFloat = true;
    try {
      expect((await ingest(docs.shipping)).statusCode).toBe(201);
    } finally {
      f.worker.forceFloat = false;
    }
    const search = await f.app.inject({ method: 'POST', url: '/api/v1/search', payload: { query: 'international shipping customs' } });
    expect(search.json().results[0].documentId).toBe('shipping');
  });

  const bad: Array<[string, object, RegExp]> = [
    ['missing title', { text: 'x' }, /title/],
    ['missing text', { title: 'x' }, /text/],
    ['empty text', { title: 'x', text: '' }, /text/],
    ['whitespace-only text', { title: 'x', text: '   \n ' }, /whitespace/],
    ['title of wrong type', { title: 42, text: 'x' }, /title/],
    ['oversize title', { title: 'x'.repeat(501), text: 'x' }, /title/],
    ['bad id', { id: 'has space', title: 'x', text: 'x' }, /id/],
    ['id too long', { id: 'a'.repeat(129), title: 'x', text: 'x' }, /id/],
    ['oversize source', { title: 'x', text: 'x', source: 's'.repeat(2049) }, /source/],
    ['metadata value of wrong type', { title: 'x', text: 'x', metadata: { a: { nested: 1 } } }, /metadata/],
    ['too many metadata keys', { title: 'x', text: 'x', metadata: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, i])) }, /metadata/],
    ['bad metadata key', { title: 'x', text: 'x', metadata: { 'bad key': 1 } }, /metadata/],
    ['reserved metadata key', { title: 'x', text: 'x', metadata: { source: 'x' } }, /reserved/],
    ['unknown field', { title: 'x', text: 'x', extra: true }, /unknown properties: extra/],
    ['chunkSize as a string', { title: 'x', text: 'x', chunkSize: '500' }, /chunkSize/],
    ['chunkSize too small', { title: 'x', text: 'x', chunkSize: 10 }, /chunkSize/],
    ['overlap above half the chunk', { title: 'x', text: 'x', chunkSize: 200, chunkOverlap: 150 }, /chunkOverlap/],
    ['text making more chunks than one worker call takes', { title: 'x', text: 'word '.repeat(200_000), chunkSize: 100, chunkOverlap: 0 }, /chunks; the limit is 2048/],
  ];

  it.each(bad)('rejects %s with a 4xx that says what is wrong, keeping existing data', async (_name, body, message) => {
    await ingest(docs.refunds);
    const res = await ingest(body);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ statusCode: 400 });
    expect(res.json().message).toMatch(message);
    expect((await f.app.inject({ url: '/api/v1/documents/refund-policy' })).statusCode).toBe(200);
    expect(await f.raw.get('state:retrieval-proxy:corpus_version')).toBe(String(v0 + 1));
  });

  it('rejects text above 1 MB (counted in UTF-8 bytes) and a non-JSON body', async () => {
    const res = await ingest({ title: 'big', text: 'é'.repeat(600_000) });
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toMatch(/1 MB/);
    const notJson = await f.app.inject({ method: 'POST', url: '/api/v1/documents', headers: { 'content-type': 'application/json' }, payload: '{"title":' });
    expect(notJson.statusCode).toBe(400);
    const huge = await ingest({ title: 'huge', text: 'a'.repeat(5 * 1024 * 1024) });
    expect(huge.statusCode).toBe(413);
    expect(f.worker.calls).toHaveLength(0);
  });
});

describe('GET/DELETE /api/v1/documents', () => {
  it('returns a document with its chunk texts, lists with paging, deletes with 204 and bumps the version', async () => {
    await ingest(docs.refunds);
    await ingest(docs.shipping);
    await ingest(docs.german);

    const one = await f.app.inject({ url: '/api/v1/documents/refund-policy' });
    expect(one.statusCode).toBe(200);
    expect(one.json()).toMatchObject({
      id: 'refund-policy',
      title: 'Refund policy',
      source: 'handbook/refunds.md',
      metadata: docs.refunds.metadata,
      chunkCount: 1,
      chunks: [{ index: 0, text: docs.refunds.text }],
    });
    expect(Date.parse(one.json().createdAt)).not.toBeNaN();

    const page = (await f.app.inject({ url: '/api/v1/documents?limit=2&offset=1' })).json();
    expect(page).toMatchObject({ total: 3, limit: 2, offset: 1 });
    expect(page.documents.map((d: { id: string }) => d.id)).toEqual(['rueckgabe', 'shipping']);

    const del = await f.app.inject({ method: 'DELETE', url: '/api/v1/documents/shipping' });
    expect(del.statusCode).toBe(204);
    expect(del.body).toBe('');
    expect(await f.raw.get('state:retrieval-proxy:corpus_version')).toBe(String(v0 + 4));
    expect((await f.app.inject({ url: '/api/v1/documents/shipping' })).statusCode).toBe(404);
    expect(await f.raw.exists('state:retrieval-proxy:doc:shipping')).toBe(0);
  });

  it('answers 404 for unknown ids without bumping the version, 400 for bad ids and paging', async () => {
    await ingest(docs.refunds);
    const get = await f.app.inject({ url: '/api/v1/documents/nope' });
    expect(get.statusCode).toBe(404);
    expect(get.json()).toMatchObject({ code: 'NOT_FOUND' });
    expect((await f.app.inject({ method: 'DELETE', url: '/api/v1/documents/nope' })).statusCode).toBe(404);
    expect(await f.raw.get('state:retrieval-proxy:corpus_version')).toBe(String(v0 + 1));

    expect((await f.app.inject({ url: `/api/v1/documents/${'a'.repeat(129)}` })).statusCode).toBe(400);
    const longId = 'a'.repeat(128);
    expect((await ingest({ ...docs.shipping, id: longId })).statusCode).toBe(201);
    expect((await f.app.inject({ url: `/api/v1/documents/${longId}` })).json().id).toBe(longId);
    expect((await f.app.inject({ method: 'DELETE', url: '/api/v1/documents/bad%20id' })).statusCode).toBe(400);
    for (const qs of ['limit=0', 'limit=101', 'limit=abc', 'offset=-1', 'other=1']) {
      const res = await f.app.inject({ url: `/api/v1/documents?${qs}` });
      expect(res.statusCode, qs).toBe(400);
    }
    expect((await f.app.inject({ url: '/api/v1/documents/refund-policy' })).statusCode).toBe(200);
  });

  it('keeps the document index out of reach of a cache clear', async () => {
    await ingest(docs.refunds);
    await f.app.inject({ method: 'POST', url: '/api/v1/search', payload: { query: 'refund' } });
    const clear = await f.app.inject({ method: 'DELETE', url: '/api/v1/cache/clear', headers: { authorization: 'Bearer test-admin-token' } });
    expect(clear.statusCode).toBe(200);
    expect(await scanKeys(f.raw, 'retrieval-proxy:search_results:*')).toEqual([]);
    expect(await scanKeys(f.raw, 'state:retrieval-proxy:*')).toHaveLength(6);
    expect((await f.app.inject({ url: '/api/v1/documents/refund-policy' })).statusCode).toBe(200);
  });
});
