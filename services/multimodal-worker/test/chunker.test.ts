import { describe, expect, it } from 'vitest';
import { chunkText } from '../src/domain/chunker.js';

const sentence = (i: number) => `Sentence number ${i} talks about caching embeddings in Redis for retrieval.`;

function paragraphs(count: number, sentencesEach: number): string {
  return Array.from({ length: count }, (_, p) =>
    Array.from({ length: sentencesEach }, (_, s) => sentence(p * 100 + s)).join(' '),
  ).join('\n\n');
}

function covered(text: string, chunks: { start: number; end: number }[]): boolean {
  const seen = new Uint8Array(text.length);
  for (const c of chunks) seen.fill(1, c.start, c.end);
  for (let i = 0; i < text.length; i++) if (!seen[i] && !/\s/.test(text[i]!)) return false;
  return true;
}

describe('chunkText', () => {
  it('returns one chunk for a short text', () => {
    expect(chunkText('  Just one line.  ', { chunkSize: 1000, chunkOverlap: 150 })).toEqual([
      { index: 0, text: 'Just one line.', start: 2, end: 16 },
    ]);
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
    const text = paragraphs(10, 6);
    const chunks = chunkText(text, { chunkSize: 600, chunkOverlap: 0 });
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

  it('without overlap, chunks do not share characters', () => {
    const chunks = chunkText(paragraphs(6, 6), { chunkSize: 300, chunkOverlap: 0 });
    for (let i = 1; i < chunks.length; i++) expect(chunks[i]!.start).toBeGreaterThanOrEqual(chunks[i - 1]!.end);
  });

  it('cuts a text without any whitespace hard, never inside a surrogate pair', () => {
    const text = '😀'.repeat(700); // 1400 UTF-16 code units
    const chunks = chunkText(text, { chunkSize: 301, chunkOverlap: 0 });
    expect(chunks.map((c) => c.text).join('')).toBe(text);
    for (const c of chunks) expect(c.text.length % 2).toBe(0);
  });

  it('terminates and covers the text for every size/overlap combination tried', () => {
    const text = `${paragraphs(5, 5)}\n\n${'x'.repeat(2500)} tail words here. ${'y '.repeat(400)}`;
    for (const chunkSize of [200, 333, 1000]) {
      for (const chunkOverlap of [0, 50, Math.floor(chunkSize / 2)]) {
        const chunks = chunkText(text, { chunkSize, chunkOverlap });
        expect(covered(text, chunks)).toBe(true);
        for (const c of chunks) expect(c.text.length).toBeLessThanOrEqual(chunkSize);
      }
    }
  });

  it('drops whitespace-only input', () => {
    expect(chunkText(' \n\n\t ', { chunkSize: 200, chunkOverlap: 0 })).toEqual([]);
  });
});
