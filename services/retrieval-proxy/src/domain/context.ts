import type { Citation, ContextResponse, ContextSection } from '@aicache/contracts';

export interface ContextSectionInput {
  documentId: string;
  title: string;
  source?: string | undefined;
  chunkIndex: number;
  text: string;
  score: number;
}

export type ContextBundle = Omit<ContextResponse, 'query'>;

const SEPARATOR = '\n\n';
const ELLIPSIS = '…';
/** A cut section shorter than this is noise; it is dropped instead. */
const MIN_PARTIAL_BODY = 40;

/** Cuts at the last whitespace before `max` when there is one in the second half; never inside a surrogate pair. */
function cutText(text: string, max: number): string {
  if (text.length <= max) return text;
  const end = max > 0 && /[\ud800-\udbff]/.test(text[max - 1] ?? '') ? max - 1 : max;
  const slice = text.slice(0, end);
  const ws = slice.search(/\s\S*$/);
  return (ws > max / 2 ? slice.slice(0, ws) : slice).trimEnd();
}

/**
 * Merges ranked sections into one text of at most `maxChars` characters: `[n] <text>` blocks joined by a
 * blank line; section n carries citation id n. The section that does not fit is cut (with an ellipsis) when
 * enough room is left, else dropped; `truncated` says whether anything was cut or dropped.
 */
export function buildContext(inputs: ContextSectionInput[], maxChars: number): ContextBundle {
  const sections: ContextSection[] = [];
  let text = '';
  let truncated = false;

  for (const input of inputs) {
    const n = sections.length + 1;
    const prefix = `${text.length > 0 ? SEPARATOR : ''}[${n}] `;
    const room = maxChars - text.length - prefix.length;
    let body = input.text;
    if (body.length > room) {
      truncated = true;
      const bodyRoom = room - ELLIPSIS.length;
      if (bodyRoom < MIN_PARTIAL_BODY) break;
      body = cutText(body, bodyRoom) + ELLIPSIS;
    }
    text += prefix + body;
    const citation: Citation = { id: n, documentId: input.documentId, title: input.title, chunkIndex: input.chunkIndex };
    if (input.source !== undefined) citation.source = input.source;
    sections.push({ citation, text: body, score: input.score });
    if (truncated) break;
  }
  return { sections, text, truncated };
}
