import { createHash } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { embeddingCacheKey } from '../src/domain/embedding-service.js';
import { resultCacheKey } from '../src/domain/file-processor.js';
import { LocalHashProvider } from '../src/providers/local-hash.js';
import { ADMIN_TOKEN, multipartBody, type Part, useFixture } from './helpers.js';

const DB = 6;
const MODEL = 'local-hash-384';
const f = useFixture(DB);

const para = (word: string) => Array.from({ length: 30 }, (_, i) => `${word} sentence ${i}.`).join(' ').slice(0, 300).trim();
const A = para('Alpha');
const B = para('Bravo');
const C = para('Charlie');
const DOC = [A, B, A, C, A].join('\n\n');
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const FILE_HASH = sha(DOC);

interface Result {
  filename: string | null;
  mimeType: string | null;
  fileHash: string;
  chunks: Array<{ index: number; text: string; hash: string; start: number; end: number; embedding?: number[] }>;
  chunkCount: number;
  uniqueChunks: number;
  model: string;
  dimensions: number;
}

function processText(body: Record<string, unknown>) {
  return f.app.inject({ method: 'POST', url: '/api/v1/process/text', payload: body });
}

function upload(parts: Part[]) {
  const { payload, headers } = multipartBody(parts);
  return f.app.inject({ method: 'POST', url: '/api/v1/process/file', payload, headers });
}

function deleteFile(hash: string, token: string | null = ADMIN_TOKEN) {
  return f.app.inject({
    method: 'DELETE',
    url: `/api/v1/cache/file/${hash}`,
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
}

const embeddingKey = (text: string) => f.app.cache.category('embeddings').key(embeddingCacheKey(MODEL, text));
const fileKey = (size: number, overlap: number) => f.app.cache.category('files').key(resultCacheKey(FILE_HASH, size, overlap, MODEL));

beforeEach(() => f.provider.reset());

describe('POST /api/v1/process/text', () => {
  it('chunks, dedupes and embeds on a miss, then replays the cached result', async () => {
    const res = await processText({ text: DOC, filename: 'notes.md', chunkSize: 400, chunkOverlap: 0 });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-cache']).toBe('miss');
    const body = res.json<Result>();
    expect(body).toMatchObject({ filename: 'notes.md', mimeType: null, fileHash: FILE_HASH, chunkCount: 5, uniqueChunks: 3, model: MODEL, dimensions: 384 });
    expect(body.chunks.map((c) => c.text)).toEqual([A, B, A, C, A]);
    expect(body.chunks.map((c) => c.hash)).toEqual([sha(A), sha(B), sha(A), sha(C), sha(A)]);
    for (const c of body.chunks) {
      expect(DOC.slice(c.start, c.end)).toBe(c.text);
      expect(c.embedding).toBeUndefined();
    }
    // Duplicate chunks were embedded once.
    expect(f.provider.computed).toBe(3);

    expect(await f.env.inspect.exists(fileKey(400, 0))).toBe(1);
    for (const t of [A, B, C]) expect(await f.env.inspect.exists(embeddingKey(t))).toBe(1);

    f.provider.reset();
    const again = await processText({ text: DOC, filename: 'notes.md', chunkSize: 400, chunkOverlap: 0 });
    expect(again.headers['x-cache']).toBe('hit');
    expect(again.json()).toEqual(body);
    expect(f.provider.computed).toBe(0);
  });

  it('answers with the caller\'s own filename on a hit', async () => {
    const res = await processText({ text: DOC, filename: 'other-name.txt', mimeType: 'text/plain', chunkSize: 400, chunkOverlap: 0 });
    expect(res.headers['x-cache']).toBe('hit');
    expect(res.json<Result>()).toMatchObject({ filename: 'other-name.txt', mimeType: 'text/plain', fileHash: FILE_HASH });
    const noName = await processText({ text: DOC, chunkSize: 400, chunkOverlap: 0 });
    expect(noName.json<Result>().filename).toBeNull();
  });

  it('includes the chunk embeddings when asked, from the embeddings cache', async () => {
    const res = await processText({ text: DOC, chunkSize: 400, chunkOverlap: 0, includeEmbeddings: true });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-cache']).toBe('hit');
    expect(f.provider.computed).toBe(0);
    const chunks = res.json<Result>().chunks;
    expect(chunks.every((c) => c.embedding?.length === 384)).toBe(true);
    expect(chunks[2]!.embedding).toEqual(chunks[0]!.embedding);
    expect(chunks[1]!.embedding).not.toEqual(chunks[0]!.embedding);
    const direct = Array.from((await new LocalHashProvider().embed([A]))[0]!);
    expect(chunks[0]!.embedding).toEqual(direct);
  });

  it('caches each chunking separately and uses the defaults 1000/150', async () => {
    const res = await processText({ text: DOC });
    expect(res.headers['x-cache']).toBe('miss');
    expect(res.json<Result>().chunkCount).toBe(2);
    expect(await f.env.inspect.exists(fileKey(1000, 150))).toBe(1);
  });

  describe('rejects malformed input with 4xx and a clear message', () => {
    const cases: Array<[string, Record<string, unknown>, number, RegExp]> = [
      ['missing text', { filename: 'x' }, 400, /text/],
      ['empty text', { text: '' }, 400, /text/],
      ['text of the wrong type', { text: 42 }, 400, /text must be string/],
      ['chunkSize too small', { text: 'abc', chunkSize: 100 }, 400, /chunkSize/],
      ['chunkSize too large', { text: 'abc', chunkSize: 9000 }, 400, /chunkSize/],
      ['chunkSize not an integer', { text: 'abc', chunkSize: 500.5 }, 400, /chunkSize/],
      ['chunkSize as a string', { text: 'abc', chunkSize: '500' }, 400, /chunkSize/],
      ['overlap above half the size', { text: 'abc', chunkSize: 400, chunkOverlap: 201 }, 400, /chunkOverlap must be a whole number from 0 to chunkSize \/ 2 = 200/],
      ['negative overlap', { text: 'abc', chunkOverlap: -1 }, 400, /chunkOverlap/],
      ['unknown property', { text: 'abc', path: '/etc/passwd' }, 400, /unknown properties: path/],
      ['unknown model', { text: 'abc', model: 'nope' }, 400, /unknown model 'nope'/],
      ['text over 2 MiB of UTF-8', { text: 'é'.repeat(1_100_000) }, 413, /2097152 bytes/],
      ['text over 2 MiB of characters', { text: 'a'.repeat(2 * 1024 * 1024 + 1) }, 413, /^text is 2097153 bytes; the limit is 2097152 bytes \(2 MiB\); larger texts go to a background job: POST \/api\/v1\/jobs\/process/],
    ];
    it.each(cases)('%s', async (_name, body, status, message) => {
      const res = await processText(body);
      expect(res.statusCode).toBe(status);
      expect(res.json<{ message: string }>().message).toMatch(message);
      expect(f.provider.computed).toBe(0);
      expect(await f.env.inspect.exists(fileKey(400, 0))).toBe(1);
    });
  });
});

describe('POST /api/v1/process/file', () => {
  it('processes an uploaded markdown file like the same text, sharing its cache entry', async () => {
    const res = await upload([
      { name: 'chunkSize', value: '400' },
      { name: 'file', filename: 'notes.md', contentType: 'text/markdown', content: DOC },
      { name: 'chunkOverlap', value: '0' },
    ]);
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-cache']).toBe('hit');
    expect(res.json<Result>()).toMatchObject({ filename: 'notes.md', mimeType: 'text/markdown', fileHash: FILE_HASH, chunkCount: 5 });
  });

  it('accepts plain text, CSV and JSON, and octet-stream for a known extension; strips a UTF-8 BOM', async () => {
    const cases: Array<[string, string, string, string]> = [
      ['a.txt', 'text/plain; charset=utf-8', 'plain text upload', 'text/plain'],
      ['a.csv', 'text/csv', 'id,name\n1,alpha\n', 'text/csv'],
      ['a.json', 'application/json', '{"k": "json upload"}', 'application/json'],
      ['README.md', 'application/octet-stream', '# Title\n\nbody', 'text/markdown'],
    ];
    for (const [filename, contentType, content, mimeType] of cases) {
      const res = await upload([{ name: 'file', filename, contentType, content }]);
      expect(res.statusCode).toBe(200);
      expect(res.json<Result>()).toMatchObject({ filename, mimeType, fileHash: sha(content), chunkCount: 1 });
    }
    const bom = await upload([{ name: 'file', filename: 'bom.txt', contentType: 'text/plain', content: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('with bom')]) }]);
    expect(bom.json<Result>().fileHash).toBe(sha('with bom'));
  });

  it('adds embeddings when the includeEmbeddings field is true', async () => {
    const res = await upload([
      { name: 'includeEmbeddings', value: 'true' },
      { name: 'file', filename: 'e.txt', contentType: 'text/plain', content: 'embed me please' },
    ]);
    expect(res.statusCode).toBe(200);
    expect(res.json<Result>().chunks[0]!.embedding).toHaveLength(384);
  });

  it.each([
    ['an image', [{ name: 'file', filename: 'x.png', contentType: 'image/png', content: Buffer.from([0x89, 0x50, 0x4e, 0x47]) }], 415, /unsupported file type "image\/png"; accepted: text\/plain, text\/markdown, application\/json, text\/csv/],
    ['octet-stream with an unknown extension', [{ name: 'file', filename: 'x.bin', contentType: 'application/octet-stream', content: 'abc' }], 415, /unsupported file type/],
    ['bytes that are not UTF-8', [{ name: 'file', filename: 'x.txt', contentType: 'text/plain', content: Buffer.from([0xff, 0xfe, 0x00, 0xc3]) }], 415, /not valid UTF-8/],
    ['no file', [{ name: 'chunkSize', value: '500' }], 400, /no file in the upload/],
    ['an empty file', [{ name: 'file', filename: 'x.txt', contentType: 'text/plain', content: '' }], 400, /empty/],
    ['two files', [{ name: 'file', filename: 'a.txt', contentType: 'text/plain', content: 'a' }, { name: 'file2', filename: 'b.txt', contentType: 'text/plain', content: 'b' }], 400, /exactly one file/],
    ['an unknown field', [{ name: 'path', value: '/etc/passwd' }, { name: 'file', filename: 'a.txt', contentType: 'text/plain', content: 'a' }], 400, /unknown field "path"/],
    ['a chunkSize that is not a number', [{ name: 'chunkSize', value: 'big' }, { name: 'file', filename: 'a.txt', contentType: 'text/plain', content: 'a' }], 400, /chunkSize' must be a whole number/],
    ['a chunkSize out of range', [{ name: 'chunkSize', value: '50' }, { name: 'file', filename: 'a.txt', contentType: 'text/plain', content: 'a' }], 400, /chunkSize must be a whole number from 200 to 8000/],
    ['a file over 2 MiB', [{ name: 'file', filename: 'big.txt', contentType: 'text/plain', content: Buffer.alloc(2 * 1024 * 1024 + 10, 0x61) }], 413, /larger than 2097152 bytes/],
  ] as Array<[string, Part[], number, RegExp]>)('rejects %s', async (_name, parts, status, message) => {
    const res = await upload(parts);
    expect(res.statusCode).toBe(status);
    expect(res.json<{ message: string }>().message).toMatch(message);
    expect(f.provider.computed).toBe(0);
  });

  it.each([
    ['no boundary', 'multipart/form-data', 'hello'],
    ['a body cut off before its closing boundary', 'multipart/form-data; boundary=XyZ', '--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\nContent-Type: text/plain\r\n\r\nunfinished'],
  ])('rejects a malformed multipart body (%s) with 400, not 500', async (_name, contentType, payload) => {
    const res = await f.app.inject({ method: 'POST', url: '/api/v1/process/file', headers: { 'content-type': contentType }, payload });
    expect(res.statusCode).toBe(400);
    expect(res.json<{ message: string }>().message).toMatch(/malformed multipart body/);
    expect(f.provider.computed).toBe(0);
  });

  it('rejects a request that is not multipart with 415', async () => {
    const res = await f.app.inject({ method: 'POST', url: '/api/v1/process/file', payload: { text: 'abc' } });
    expect(res.statusCode).toBe(415);
    expect(res.json<{ message: string }>().message).toMatch(/multipart\/form-data/);
  });
});

describe('DELETE /api/v1/cache/file/:fileHash', () => {
  it('needs the admin token', async () => {
    expect((await deleteFile(FILE_HASH, null)).statusCode).toBe(401);
    expect((await deleteFile(FILE_HASH, 'wrong-token')).statusCode).toBe(401);
    expect(await f.env.inspect.exists(fileKey(400, 0))).toBe(1);
  });

  it.each(['abc', 'g'.repeat(64), 'a'.repeat(65)])('rejects the hash %s with 400', async (hash) => {
    const res = await deleteFile(hash);
    expect(res.statusCode).toBe(400);
    expect(res.json<{ message: string }>().message).toMatch(/fileHash/);
  });

  it('removes every cached result of the file and its chunk embeddings, and nothing else', async () => {
    const keep = 'unrelated embedding that must survive';
    await f.app.inject({ method: 'POST', url: '/api/v1/embeddings', payload: { input: keep } });
    expect(await f.env.inspect.exists(fileKey(400, 0), fileKey(1000, 150))).toBe(2);

    const res = await deleteFile(FILE_HASH.toUpperCase());
    expect(res.statusCode).toBe(200);
    const body = res.json<{ fileHash: string; removed: number }>();
    expect(body.fileHash).toBe(FILE_HASH);
    // 2 results + at least the 3 distinct chunk embeddings of the 400/0 chunking.
    expect(body.removed).toBeGreaterThanOrEqual(5);

    expect(await f.env.inspect.exists(fileKey(400, 0), fileKey(1000, 150))).toBe(0);
    for (const t of [A, B, C]) expect(await f.env.inspect.exists(embeddingKey(t))).toBe(0);
    expect(await f.env.inspect.exists(embeddingKey(keep))).toBe(1);

    f.provider.reset();
    const again = await processText({ text: DOC, chunkSize: 400, chunkOverlap: 0 });
    expect(again.headers['x-cache']).toBe('miss');
    expect(f.provider.computed).toBe(3);

    const nothing = await deleteFile('0'.repeat(64));
    expect(nothing.json()).toEqual({ fileHash: '0'.repeat(64), removed: 0 });
  });
});
