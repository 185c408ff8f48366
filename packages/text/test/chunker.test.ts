import { describe, expect, it } from 'vitest';
import { checkChunkOptions, ChunkLimitError, chunkText, chunkTextAsync, defaultChunkOverlap, iterateChunks, maxChunkOverlap } from '../src/index.js';

const sentence = (i: number) => `Sentence number ${i} talks about caching embeddings in Redis for retrieval.`;

function paragraphs(count: number, sentencesEach: number): string {
  return Array.from({ length: count }, (_, p) => Array.from({ length: sentencesEach }, (_, s) => sentence(p * 100 + s)).join(' ')).join('\n\n');
}

function covered(text: string, chunks: { start: number; end: number }[]): boolean {
  const seen = new Uint8Array(text.length);
  for (const c of chunks) seen.fill(1, c.start, c.end);
  for (let i = 0; i < text.length; i++) if (!seen[i] && !/\s/.test(text[i]!)) return false;
  return true;
}

/** No lone surrogate: a cut inside a pair would leave one at each side. */
function wellFormed(s: string): boolean {
  return !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);
}

describe('chunkText', () => {
  it('returns one chunk for a short text', () => {
    expect(chunkText('  Just one line.  ', { chunkSize: 1000, chunkOverlap: 150 })).toEqual([{ index: 0, text: 'Just one line.', start: 2, end: 16 }]);
  });

  it('keeps every chunk within chunkSize, with offsets that slice the original text, covering all of it', () => {
    const text = paragraphs(12, 9);
    const chunks = chunkText(text, { chunkSize: 500, chunkOverlap: 100 });
    expect(chunks.length).toBeGreaterThan(5);
    chunks.forEach((c, i) => {
      expect(c.index).toBe(i);
      expect(c.text.length).toBeLessThanOrEqual(500);
      expect(text.slice(c.start, c.end)).toBe(c.text);
      expect(c.text).toBe(c.text.trim());
    });
    expect(covered(text, chunks)).toBe(true);
  });

  it('ends chunks at paragraph or sentence boundaries when it can', () => {
    const chunks = chunkText(paragraphs(10, 6), { chunkSize: 600, chunkOverlap: 0 });
    for (const c of chunks.slice(0, -1)) expect(c.text).toMatch(/\.$/);
  });

  it('overlaps neighbouring chunks by about chunkOverlap, starting on a word', () => {
    const text = paragraphs(8, 8);
    const chunks = chunkText(text, { chunkSize: 400, chunkOverlap: 120 });
    for (let i = 1; i < chunks.length; i++) {
      const prev = chunks[i - 1]!;
      const cur = chunks[i]!;
      expect(cur.start).toBeLessThan(prev.end);
      expect(prev.end - cur.start).toBeLessThanOrEqual(120);
      expect(/\s/.test(text[cur.start - 1]!)).toBe(true);
    }
  });

  it('loses no word and never starts a chunk mid-word', () => {
    const text = Array.from({ length: 400 }, (_, i) => `word${i}`).join(' ');
    const chunks = chunkText(text, { chunkSize: 200, chunkOverlap: 60 });
    for (const c of chunks) expect(c.text).toMatch(/^word\d+/);
    const seen = new Set(chunks.flatMap((c) => c.text.split(' ')));
    for (const w of text.split(' ')) expect(seen.has(w)).toBe(true);
  });

  it('without overlap, chunks do not share characters', () => {
    const chunks = chunkText(paragraphs(6, 6), { chunkSize: 300, chunkOverlap: 0 });
    for (let i = 1; i < chunks.length; i++) expect(chunks[i]!.start).toBeGreaterThanOrEqual(chunks[i - 1]!.end);
  });

  it('hard-cuts a word longer than the chunk', () => {
    expect(chunkText('x'.repeat(1000), { chunkSize: 300, chunkOverlap: 0 }).map((c) => c.text.length)).toEqual([300, 300, 300, 100]);
  });

  it.each([
    ['700 emoji, chunkSize 301, no overlap', '😀'.repeat(700), 301, 0],
    ['300 emoji, chunkSize 101, overlap 15', '😀'.repeat(300), 101, 15],
    ['300 emoji, chunkSize 101, overlap 33', '😀'.repeat(300), 101, 33],
    ['300 emoji, chunkSize 100, overlap 49', '😀'.repeat(300), 100, 49],
    ['odd offset: a letter then emoji', `a${'🦀'.repeat(500)}`, 200, 31],
    ['emoji words', Array.from({ length: 300 }, (_, i) => '𝔘'.repeat(1 + (i % 9))).join(' '), 101, 50],
  ])('never cuts inside a surrogate pair (%s)', (_name, text, chunkSize, chunkOverlap) => {
    const chunks = chunkText(text, { chunkSize, chunkOverlap });
    expect(chunks.length).toBeGreaterThan(1);
    for (const c of chunks) {
      expect(wellFormed(c.text)).toBe(true);
      expect(c.text.length).toBeLessThanOrEqual(chunkSize);
      expect(text.slice(c.start, c.end)).toBe(c.text);
    }
    expect(covered(text, chunks)).toBe(true);
    if (chunkOverlap === 0) expect(chunks.map((c) => c.text).join('')).toBe(text);
  });

  it('keeps lone surrogates of the input as they are', () => {
    const text = `${'ab\ud800'.repeat(100)} tail`;
    const chunks = chunkText(text, { chunkSize: 50, chunkOverlap: 0 });
    expect(chunks.map((c) => c.text).join('')).toBe(text.replace(' ', ''));
  });

  it('terminates and covers the text for every size/overlap combination tried', () => {
    const text = `${paragraphs(5, 5)}\n\n${'x'.repeat(2500)} tail words here. ${'y '.repeat(400)}${'😀'.repeat(300)}`;
    for (const chunkSize of [2, 3, 101, 200, 333, 1000]) {
      for (const chunkOverlap of new Set([0, 1, defaultChunkOverlap(chunkSize), maxChunkOverlap(chunkSize)])) {
        const chunks = chunkText(text, { chunkSize, chunkOverlap });
        expect(covered(text, chunks)).toBe(true);
        for (const c of chunks) expect(c.text.length).toBeLessThanOrEqual(chunkSize);
        for (let i = 1; i < chunks.length; i++) expect(chunks[i]!.start).toBeGreaterThan(chunks[i - 1]!.start);
      }
    }
  });

  it('drops whitespace-only input', () => {
    expect(chunkText(' \n\n\t ', { chunkSize: 200, chunkOverlap: 0 })).toEqual([]);
    expect(chunkText('', { chunkSize: 200, chunkOverlap: 0 })).toEqual([]);
  });
});

describe('chunk options', () => {
  it('defaults the overlap to 15% of the size, which always fits', () => {
    expect(defaultChunkOverlap(1000)).toBe(150);
    expect(defaultChunkOverlap(250)).toBe(37);
    expect(defaultChunkOverlap(100)).toBe(15);
    const rejected: number[] = [];
    for (let size = 2; size <= 8000; size++) {
      try {
        checkChunkOptions({ chunkSize: size, chunkOverlap: defaultChunkOverlap(size) });
      } catch {
        rejected.push(size);
      }
    }
    expect(rejected).toEqual([]);
  });

  it.each([
    [{ chunkSize: 1, chunkOverlap: 0 }, /chunkSize must be a whole number of at least 2 \(got 1\)/],
    [{ chunkSize: 100.5, chunkOverlap: 0 }, /chunkSize/],
    [{ chunkSize: 100, chunkOverlap: 51 }, /chunkOverlap must be a whole number from 0 to chunkSize \/ 2 = 50 \(got 51\)/],
    [{ chunkSize: 100, chunkOverlap: -1 }, /chunkOverlap/],
    [{ chunkSize: 100, chunkOverlap: 1.5 }, /chunkOverlap/],
  ])('rejects %o with a RangeError', (options, message) => {
    expect(() => chunkText('abc', options)).toThrow(RangeError);
    expect(() => chunkText('abc', options)).toThrow(message);
  });
});

describe('chunkTextAsync', () => {
  const text = paragraphs(40, 9);
  const options = { chunkSize: 300, chunkOverlap: 45 };

  it('gives what chunkText gives', async () => {
    expect(await chunkTextAsync(text, options, { yieldEvery: 1000 })).toEqual(chunkText(text, options));
  });

  it('lets other work run while it chunks a long text', async () => {
    // Work queued on the event loop before the chunking starts runs before it ends only if the chunker yields.
    const queuedRanBeforeTheEnd = async (yieldEvery: number) => {
      let ran = false;
      setImmediate(() => (ran = true));
      await chunkTextAsync(text, options, { yieldEvery });
      return ran;
    };
    expect(await queuedRanBeforeTheEnd(1)).toBe(true);
    expect(await queuedRanBeforeTheEnd(Number.MAX_SAFE_INTEGER)).toBe(false);
  });

  it('stops past maxChunks with a ChunkLimitError', async () => {
    const count = chunkText(text, options).length;
    await expect(chunkTextAsync(text, options, { maxChunks: count })).resolves.toHaveLength(count);
    const err = await chunkTextAsync(text, options, { maxChunks: count - 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChunkLimitError);
    expect((err as ChunkLimitError).message).toBe(`the text makes more than ${count - 1} chunks of at most 300 characters`);
    expect((err as ChunkLimitError).limit).toBe(count - 1);
  });

  it('is lazy underneath: iterateChunks stops where the caller stops', () => {
    const it = iterateChunks('a b c d e f g h i j', { chunkSize: 4, chunkOverlap: 0 });
    expect(it.next().value).toEqual({ index: 0, text: 'a b', start: 0, end: 3 });
  });
});
