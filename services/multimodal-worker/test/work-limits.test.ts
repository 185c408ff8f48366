import { describe, expect, it } from 'vitest';
import { MAX_BATCH_CHARS, MAX_EMBEDDED_CHUNKS, MAX_INPUTS, MAX_PROCESS_CHUNKS } from '../src/schemas.js';
import { multipartBody, useFixture } from './helpers.js';
import { words } from './load.js';

const f = useFixture(10);

function embeddings(input: string[]) {
  return f.app.inject({ method: 'POST', url: '/api/v1/embeddings', payload: { input } });
}

function processText(body: Record<string, unknown>) {
  return f.app.inject({ method: 'POST', url: '/api/v1/process/text', payload: body });
}

/** The error message in either error shape (the stack's, or OpenAI's on the OpenAI-compatible routes). */
function messageOf(body: string): string {
  const parsed = JSON.parse(body) as { message?: string; error?: { message?: string } };
  return parsed.error?.message ?? parsed.message ?? '';
}

describe('work one request may ask for', () => {
  it('has the limits the README documents', () => {
    expect({ MAX_INPUTS, MAX_BATCH_CHARS, MAX_PROCESS_CHUNKS, MAX_EMBEDDED_CHUNKS }).toEqual({
      MAX_INPUTS: 2048,
      MAX_BATCH_CHARS: 4_194_304,
      MAX_PROCESS_CHUNKS: 8192,
      MAX_EMBEDDED_CHUNKS: 2048,
    });
  });

  it(`answers 413 to an embeddings batch of ${MAX_INPUTS + 1} inputs, computing nothing`, async () => {
    f.provider.reset();
    const res = await embeddings(Array.from({ length: MAX_INPUTS + 1 }, (_, i) => `input ${i}`));
    expect(res.statusCode).toBe(413);
    expect(messageOf(res.body)).toBe(`input has ${MAX_INPUTS + 1} items; one request takes at most ${MAX_INPUTS}: split the batch; more goes to a background job: POST /api/v1/jobs/embeddings (up to 100000 inputs in 67108864 bytes)`);
    expect(f.provider.computed).toBe(0);
  });

  it(`answers 413 to an embeddings batch over ${MAX_BATCH_CHARS} characters in all, computing nothing`, async () => {
    f.provider.reset();
    const each = 32_768;
    const count = Math.floor(MAX_BATCH_CHARS / each) + 1;
    const res = await embeddings(Array.from({ length: count }, (_, i) => `${i} ${'x'.repeat(each - String(i).length - 1)}`));
    expect(res.statusCode).toBe(413);
    expect(messageOf(res.body)).toBe(`input has ${count * each} characters in all; one request takes at most ${MAX_BATCH_CHARS}: split the batch; more goes to a background job: POST /api/v1/jobs/embeddings (up to 100000 inputs in 67108864 bytes)`);
    expect(f.provider.computed).toBe(0);
  });

  it(`takes a batch of ${MAX_INPUTS} inputs of ${MAX_BATCH_CHARS} characters in all`, async () => {
    const each = MAX_BATCH_CHARS / MAX_INPUTS;
    const input = Array.from({ length: MAX_INPUTS }, (_, i) => words(each, i));
    const res = await embeddings(input);
    expect(res.statusCode).toBe(200);
    expect(res.json<{ data: unknown[] }>().data).toHaveLength(MAX_INPUTS);
  });

  it(`answers 413 to a text that makes more than ${MAX_PROCESS_CHUNKS} chunks, caching nothing`, async () => {
    f.provider.reset();
    const text = words(2_000_000, 7);
    const res = await processText({ text, chunkSize: 200, chunkOverlap: 0 });
    expect(res.statusCode).toBe(413);
    expect(messageOf(res.body)).toMatch(new RegExp(`^the text makes more than ${MAX_PROCESS_CHUNKS} chunks of at most 200 characters; one request makes at most ${MAX_PROCESS_CHUNKS}: use a larger chunkSize or split the text; larger texts go to a background job: POST /api/v1/jobs/process \\(up to 33554432 bytes and 200000 chunks\\)$`));
    expect(f.provider.computed).toBe(0);
  });

  it(`answers 413 to includeEmbeddings for more than ${MAX_EMBEDDED_CHUNKS} chunks before embedding anything, on a miss and on a hit`, async () => {
    const text = words(1_000_000, 11);
    const tooMany =
      `the text makes more than ${MAX_EMBEDDED_CHUNKS} chunks of at most 400 characters; with includeEmbeddings one answer holds at most ${MAX_EMBEDDED_CHUNKS} chunks: ` +
      'use a larger chunkSize, or ask without includeEmbeddings and embed the chunks through /api/v1/embeddings; larger texts go to a background job: POST /api/v1/jobs/process (up to 33554432 bytes and 200000 chunks)';
    f.provider.reset();
    const miss = await processText({ text, chunkSize: 400, includeEmbeddings: true });
    expect(miss.statusCode).toBe(413);
    expect(messageOf(miss.body)).toBe(tooMany);
    expect(f.provider.computed).toBe(0);

    const without = await processText({ text, chunkSize: 400 });
    expect(without.statusCode).toBe(200);
    expect(without.json<{ chunkCount: number }>().chunkCount).toBeGreaterThan(MAX_EMBEDDED_CHUNKS);
    const hit = await processText({ text, chunkSize: 400, includeEmbeddings: true });
    expect(hit.statusCode).toBe(413);
    expect(messageOf(hit.body)).toBe(tooMany);
  });

  it('applies the same limits to an upload', async () => {
    const { payload, headers } = multipartBody([
      { name: 'chunkSize', value: '200' },
      { name: 'chunkOverlap', value: '0' },
      { name: 'file', filename: 'big.txt', contentType: 'text/plain', content: words(2_000_000, 7) },
    ]);
    const res = await f.app.inject({ method: 'POST', url: '/api/v1/process/file', payload, headers });
    expect(res.statusCode).toBe(413);
    expect(messageOf(res.body)).toMatch(new RegExp(`more than ${MAX_PROCESS_CHUNKS} chunks`));
  });
});
