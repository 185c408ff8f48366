import { describe, expect, it } from 'vitest';
import { multipartBody, useFixture } from './helpers.js';

const f = useFixture(9);

const TEXT = Array.from({ length: 40 }, (_, i) => `Sentence ${i} is about default overlaps.`).join(' ');

interface Processed {
  fileHash: string;
  chunkSize: number;
  chunkOverlap: number;
  chunkCount: number;
}

function upload(fields: Record<string, string>) {
  const { payload, headers } = multipartBody([
    ...Object.entries(fields).map(([name, value]) => ({ name, value })),
    { name: 'file', filename: 'notes.txt', contentType: 'text/plain', content: TEXT },
  ]);
  return f.app.inject({ method: 'POST', url: '/api/v1/process/file', payload, headers });
}

describe('default chunkOverlap', () => {
  it.each([200, 250, 299, 1000, 8000])('accepts chunkSize %i without chunkOverlap, with the same default on both routes', async (chunkSize) => {
    const text = await f.app.inject({ method: 'POST', url: '/api/v1/process/text', payload: { text: TEXT, chunkSize } });
    expect(text.statusCode, text.body).toBe(200);
    const fromText = text.json<Processed>();
    expect(fromText.chunkSize).toBe(chunkSize);
    // 15% of the chunk size: 150 for the default 1000, never over half the size.
    expect(fromText.chunkOverlap).toBe(Math.floor(chunkSize * 0.15));

    const file = await upload({ chunkSize: String(chunkSize) });
    expect(file.statusCode, file.body).toBe(200);
    expect(file.json<Processed>()).toMatchObject({ fileHash: fromText.fileHash, chunkSize, chunkOverlap: fromText.chunkOverlap, chunkCount: fromText.chunkCount });
    // Same chunking, so the upload is answered from the entry the text request wrote.
    expect(file.headers['x-cache']).toBe('hit');
  });

  it('uses 1000 / 150 when neither is given', async () => {
    const res = await f.app.inject({ method: 'POST', url: '/api/v1/process/text', payload: { text: TEXT } });
    expect(res.json<Processed>()).toMatchObject({ chunkSize: 1000, chunkOverlap: 150 });
  });
});
