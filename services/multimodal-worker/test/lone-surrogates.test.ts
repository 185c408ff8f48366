import { describe, expect, it } from 'vitest';
import { hashEmbed } from '../src/providers/local-hash.js';
import { useFixture } from './helpers.js';

// Texts that differ only where one has a lone surrogate and the other U+FFFD, its UTF-8 replacement.
const LONE = '\ud800';
const REPLACEMENT = '\ufffd';

const f = useFixture(8);

interface Embedded {
  data: Array<{ embedding: number[] }>;
}

interface Processed {
  fileHash: string;
  chunks: Array<{ text: string; hash: string }>;
}

describe('cache keys of texts with lone surrogates', () => {
  it('embeddings of "\\ud800" and "\\ufffd" do not share a cache entry', async () => {
    const lone = await f.app.inject({ method: 'POST', url: '/api/v1/embeddings', payload: { input: LONE } });
    expect(lone.statusCode).toBe(200);
    expect(lone.headers['x-cache']).toBe('miss');

    f.provider.reset();
    const replaced = await f.app.inject({ method: 'POST', url: '/api/v1/embeddings', payload: { input: REPLACEMENT } });
    expect(replaced.statusCode).toBe(200);
    expect(replaced.headers['x-cache']).toBe('miss');
    expect(f.provider.calls).toEqual([[REPLACEMENT]]);
    expect(replaced.json<Embedded>().data[0]!.embedding).toEqual(Array.from(hashEmbed(REPLACEMENT)));
    expect(lone.json<Embedded>().data[0]!.embedding).toEqual(Array.from(hashEmbed(LONE)));

    // Both are cached now, each under its own key.
    for (const [input, vector] of [[LONE, hashEmbed(LONE)], [REPLACEMENT, hashEmbed(REPLACEMENT)]] as const) {
      const again = await f.app.inject({ method: 'POST', url: '/api/v1/embeddings', payload: { input } });
      expect(again.headers['x-cache']).toBe('hit');
      expect(again.json<Embedded>().data[0]!.embedding).toEqual(Array.from(vector));
    }
  });

  it('/process/text of one text never answers with the chunks of another that differs by a lone surrogate', async () => {
    const first = await f.app.inject({ method: 'POST', url: '/api/v1/process/text', payload: { text: `A note ${LONE} about surrogates.` } });
    expect(first.statusCode).toBe(200);
    expect(first.headers['x-cache']).toBe('miss');
    expect(first.json<Processed>().chunks.map((c) => c.text)).toEqual([`A note ${LONE} about surrogates.`]);

    const second = await f.app.inject({ method: 'POST', url: '/api/v1/process/text', payload: { text: `A note ${REPLACEMENT} about surrogates.` } });
    expect(second.statusCode).toBe(200);
    expect(second.headers['x-cache']).toBe('miss');
    const body = second.json<Processed>();
    expect(body.chunks.map((c) => c.text)).toEqual([`A note ${REPLACEMENT} about surrogates.`]);
    expect(body.fileHash).not.toBe(first.json<Processed>().fileHash);
    expect(body.chunks[0]!.hash).not.toBe(first.json<Processed>().chunks[0]!.hash);
  });

  it('keeps the sha256 of the UTF-8 bytes as fileHash for well-formed text, emoji included', async () => {
    const { createHash } = await import('node:crypto');
    const text = 'Well-formed text with an emoji 😀 and an accent é.';
    const res = await f.app.inject({ method: 'POST', url: '/api/v1/process/text', payload: { text } });
    expect(res.json<Processed>().fileHash).toBe(createHash('sha256').update(Buffer.from(text, 'utf8')).digest('hex'));
  });
});
