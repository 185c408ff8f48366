import { setImmediate as yieldToLoop } from 'node:timers/promises';

export interface Chunk {
  /** Position of the chunk in the text, from 0. */
  index: number;
  text: string;
  /** Offsets into the original text in UTF-16 code units (JS string indices), end exclusive: text.slice(start, end) === chunk.text. */
  start: number;
  end: number;
}

export interface ChunkOptions {
  /** Longest chunk, in UTF-16 code units (JS string length); at least 2. */
  chunkSize: number;
  /** Code units shared by neighbouring chunks, 0 to floor(chunkSize / 2). */
  chunkOverlap: number;
}

export interface AsyncChunkOptions {
  /** Stop with a ChunkLimitError once the text makes more than this many chunks. */
  maxChunks?: number;
  /** Yield to the event loop after this many code units of text (default 65,536). */
  yieldEvery?: number;
}

/** The default overlap is this share of the chunk size, so it fits every size (150 for 1000). */
export const DEFAULT_OVERLAP_RATIO = 0.15;

export function defaultChunkOverlap(chunkSize: number): number {
  return Math.floor(chunkSize * DEFAULT_OVERLAP_RATIO);
}

export function maxChunkOverlap(chunkSize: number): number {
  return Math.floor(chunkSize / 2);
}

/** The text makes more chunks than the caller allows. */
export class ChunkLimitError extends RangeError {
  constructor(
    readonly limit: number,
    readonly chunkSize: number,
  ) {
    super(`the text makes more than ${limit} chunks of at most ${chunkSize} characters`);
    this.name = 'ChunkLimitError';
  }
}

/** Throws a RangeError naming the option when the options are not whole numbers in range. */
export function checkChunkOptions({ chunkSize, chunkOverlap }: ChunkOptions): void {
  if (!Number.isInteger(chunkSize) || chunkSize < 2) throw new RangeError(`chunkSize must be a whole number of at least 2 (got ${chunkSize})`);
  const max = maxChunkOverlap(chunkSize);
  if (!Number.isInteger(chunkOverlap) || chunkOverlap < 0 || chunkOverlap > max) {
    throw new RangeError(`chunkOverlap must be a whole number from 0 to chunkSize / 2 = ${max} (got ${chunkOverlap})`);
  }
}

const PARAGRAPH = /\n[ \t]*\n\s*/g;
const SENTENCE = /[.!?…。！？]["'”’)\]»]*\s+/g;
const LINE = /\n\s*/g;
const SPACE = /\s+/g;
const WHITESPACE = /\s/;

/**
 * Last break of `re` inside text[from, to): the index just past the separator, so the separator
 * stays with the chunk before it. -1 when there is none.
 */
function lastBreak(text: string, re: RegExp, from: number, to: number): number {
  const window = text.slice(from, to);
  let best = -1;
  re.lastIndex = 0;
  for (let m = re.exec(window); m; m = re.exec(window)) {
    // The break must leave something before it.
    if (m.index > 0) best = from + m.index + m[0].length;
    if (m[0].length === 0) re.lastIndex++;
  }
  return best;
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

/** Whether index i falls between the two halves of a surrogate pair (cutting there would leave two lone surrogates). */
function insidePair(text: string, i: number): boolean {
  return i > 0 && i < text.length && isLowSurrogate(text.charCodeAt(i)) && isHighSurrogate(text.charCodeAt(i - 1));
}

/**
 * Splits text into chunks of at most `chunkSize` code units that overlap by about `chunkOverlap`.
 * A chunk ends at the last paragraph break in its second half if there is one, else the last
 * sentence end, line break, or whitespace, and only as a last resort mid-word. No chunk starts or
 * ends inside a surrogate pair, so every chunk of well-formed text is well-formed. The next chunk
 * starts `chunkOverlap` code units before the end, moved forward to a word start. Leading and
 * trailing whitespace is trimmed from each chunk; whitespace-only text makes no chunk.
 */
export function* iterateChunks(text: string, options: ChunkOptions): Generator<Chunk> {
  checkChunkOptions(options);
  const { chunkSize, chunkOverlap: overlap } = options;
  const n = text.length;
  let index = 0;
  let start = 0;

  while (start < n) {
    while (start < n && WHITESPACE.test(text[start]!)) start++;
    if (start >= n) break;

    let end: number;
    const hardEnd = Math.min(start + chunkSize, n);
    if (hardEnd === n) {
      end = n;
    } else {
      const minEnd = start + Math.max(1, Math.floor(chunkSize / 2));
      end = -1;
      for (const re of [PARAGRAPH, SENTENCE, LINE, SPACE]) {
        // +1 lets a separator that begins right at hardEnd count; the cut stays ≤ hardEnd.
        const b = lastBreak(text, re, minEnd, hardEnd + 1);
        if (b > minEnd) {
          end = Math.min(b, hardEnd);
          break;
        }
      }
      if (end < 0) end = insidePair(text, hardEnd) ? hardEnd - 1 : hardEnd;
    }

    let trimmedEnd = end;
    while (trimmedEnd > start && WHITESPACE.test(text[trimmedEnd - 1]!)) trimmedEnd--;
    yield { index: index++, text: text.slice(start, trimmedEnd), start, end: trimmedEnd };

    if (end >= n) break;
    let next = trimmedEnd - overlap;
    if (overlap > 0 && next > start) {
      // Move forward to the start of a word so the overlap does not begin mid-word.
      while (next < trimmedEnd && !WHITESPACE.test(text[next - 1]!)) next++;
      if (next >= trimmedEnd) next = trimmedEnd - overlap;
      if (insidePair(text, next)) next++;
    }
    start = next > start ? next : end;
  }
}

/** Every chunk of the text at once (see iterateChunks). */
export function chunkText(text: string, options: ChunkOptions): Chunk[] {
  return [...iterateChunks(text, options)];
}

/**
 * chunkText for long texts on a server: yields to the event loop every `yieldEvery` code units, and
 * stops with a ChunkLimitError past `maxChunks` instead of chunking the rest.
 */
export async function chunkTextAsync(text: string, options: ChunkOptions, { maxChunks = Infinity, yieldEvery = 65_536 }: AsyncChunkOptions = {}): Promise<Chunk[]> {
  const chunks: Chunk[] = [];
  let yieldedAt = 0;
  for (const chunk of iterateChunks(text, options)) {
    if (chunks.length >= maxChunks) throw new ChunkLimitError(maxChunks, options.chunkSize);
    chunks.push(chunk);
    if (chunk.end - yieldedAt >= yieldEvery) {
      yieldedAt = chunk.end;
      await yieldToLoop();
    }
  }
  return chunks;
}
