export interface ChunkOptions {
  /** Target maximum chunk length in characters. */
  chunkSize: number;
  /** Characters shared by consecutive chunks. Must be smaller than chunkSize. */
  chunkOverlap: number;
}

export const DEFAULT_CHUNK_SIZE = 800;
export const DEFAULT_CHUNK_OVERLAP = 100;

const SENTENCE_END = /[.!?。！？][)"'\]»”’]*\s/g;
const WHITESPACE = /\s/;

/**
 * Where to cut the window [start, hardEnd): the last paragraph break, else sentence end, else whitespace
 * in the second half of the window, so a chunk never ends mid-word unless a word is longer than the window.
 */
function findCut(text: string, start: number, hardEnd: number): number {
  if (hardEnd >= text.length) return text.length;
  const minCut = start + Math.floor((hardEnd - start) / 2);
  const window = text.slice(start, hardEnd + 1);

  const para = window.lastIndexOf('\n\n');
  if (para >= 0 && start + para >= minCut) return start + para;

  let sentenceCut = -1;
  SENTENCE_END.lastIndex = 0;
  for (let m = SENTENCE_END.exec(window); m; m = SENTENCE_END.exec(window)) {
    const end = start + m.index + m[0].length - 1; // keep the punctuation, cut before the whitespace
    if (end <= hardEnd) sentenceCut = end;
  }
  if (sentenceCut >= minCut) return sentenceCut;

  for (let i = hardEnd; i >= minCut; i--) {
    if (WHITESPACE.test(text[i] ?? '')) return i;
  }
  return hardEnd;
}

/** Moves `pos` forward to the start of a word (at most up to `limit`), so overlaps do not begin mid-word. */
function alignToWordStart(text: string, pos: number, limit: number): number {
  if (pos <= 0) return 0;
  if (WHITESPACE.test(text[pos - 1] ?? '')) return pos;
  for (let i = pos; i < limit; i++) {
    if (WHITESPACE.test(text[i] ?? '')) return i + 1;
  }
  return pos;
}

/**
 * Splits text into overlapping chunks of at most `chunkSize` characters, cut on paragraph, sentence
 * or word boundaries where possible. Chunks are trimmed; whitespace-only chunks are dropped.
 */
export function chunkText(text: string, opts: ChunkOptions = { chunkSize: DEFAULT_CHUNK_SIZE, chunkOverlap: DEFAULT_CHUNK_OVERLAP }): string[] {
  const { chunkSize, chunkOverlap } = opts;
  if (!Number.isInteger(chunkSize) || chunkSize < 1) throw new RangeError('chunkSize must be a positive integer');
  if (!Number.isInteger(chunkOverlap) || chunkOverlap < 0 || chunkOverlap >= chunkSize) {
    throw new RangeError('chunkOverlap must be an integer in 0..chunkSize-1');
  }
  const chunks: string[] = [];
  let start = 0;
  // Leading whitespace never belongs to a chunk.
  while (start < text.length && WHITESPACE.test(text[start] ?? '')) start++;
  while (start < text.length) {
    const hardEnd = Math.min(start + chunkSize, text.length);
    const cut = findCut(text, start, hardEnd);
    const piece = text.slice(start, cut).trim();
    if (piece.length > 0) chunks.push(piece);
    if (cut >= text.length) break;

    let next = alignToWordStart(text, Math.max(cut - chunkOverlap, start + 1), cut);
    if (next <= start) next = cut;
    while (next < text.length && WHITESPACE.test(text[next] ?? '')) next++;
    start = next;
  }
  return chunks;
}
