export interface Chunk {
  index: number;
  text: string;
  /** Offsets into the original text in UTF-16 code units (JS string indices), end exclusive: text.slice(start, end) === chunk.text. */
  start: number;
  end: number;
}

export interface ChunkOptions {
  /** Target maximum chunk length in characters. */
  chunkSize: number;
  /** Characters shared by consecutive chunks (≤ chunkSize / 2). */
  chunkOverlap: number;
}

const PARAGRAPH = /\n[ \t]*\n\s*/g;
const SENTENCE = /[.!?…。！？]["'”’)\]]*\s+/g;
const LINE = /\n\s*/g;
const SPACE = /\s+/g;

/**
 * Last break of `re` inside text[from, to): the index just past the separator, so the separator
 * stays with the chunk before it. -1 when there is none.
 */
function lastBreak(text: string, re: RegExp, from: number, to: number): number {
  const window = text.slice(from, to);
  let best = -1;
  re.lastIndex = 0;
  for (let m = re.exec(window); m; m = re.exec(window)) {
    const endOfSep = m.index + m[0].length;
    // The break must leave something before it.
    if (m.index > 0) best = from + endOfSep;
    if (m[0].length === 0) re.lastIndex++;
  }
  return best;
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

/**
 * Splits text into chunks of at most `chunkSize` characters that overlap by about `chunkOverlap`.
 * A chunk ends at the last paragraph break in its second half if there is one, else the last
 * sentence end, line break, or whitespace, and only as a last resort mid-word (never inside a
 * surrogate pair). The next chunk starts `chunkOverlap` characters before the end, moved forward
 * to a word start. Leading and trailing whitespace is trimmed from each chunk; whitespace-only
 * chunks are dropped.
 */
export function chunkText(text: string, { chunkSize, chunkOverlap }: ChunkOptions): Chunk[] {
  if (chunkSize < 1) throw new RangeError('chunkSize must be at least 1');
  const overlap = Math.max(0, Math.min(chunkOverlap, Math.floor(chunkSize / 2)));
  const chunks: Chunk[] = [];
  const n = text.length;
  let start = 0;

  while (start < n) {
    // Skip whitespace so chunks never start with it.
    while (start < n && /\s/.test(text[start]!)) start++;
    if (start >= n) break;

    let end: number;
    const hardEnd = Math.min(start + chunkSize, n);
    if (hardEnd === n) {
      end = n;
    } else {
      const minEnd = start + Math.max(1, Math.floor(chunkSize / 2));
      end = -1;
      for (const re of [PARAGRAPH, SENTENCE, LINE, SPACE]) {
        const b = lastBreak(text, re, minEnd, hardEnd + 1);
        // +1 lets a separator that begins right at hardEnd count; the cut must still be ≤ hardEnd after trimming.
        if (b > minEnd) {
          end = Math.min(b, hardEnd);
          break;
        }
      }
      if (end < 0) {
        end = hardEnd;
        if (isHighSurrogate(text.charCodeAt(end - 1))) end--;
      }
    }

    let trimmedEnd = end;
    while (trimmedEnd > start && /\s/.test(text[trimmedEnd - 1]!)) trimmedEnd--;
    chunks.push({ index: chunks.length, text: text.slice(start, trimmedEnd), start, end: trimmedEnd });

    if (end >= n) break;
    let next = trimmedEnd - overlap;
    if (overlap > 0 && next > start) {
      // Move forward to the start of a word so the overlap does not begin mid-word.
      while (next < trimmedEnd && !/\s/.test(text[next - 1]!)) next++;
      if (next >= trimmedEnd) next = trimmedEnd - overlap;
    }
    start = next > start ? next : end;
  }
  return chunks;
}
