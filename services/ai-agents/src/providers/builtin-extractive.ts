import { clip, sentences, terms } from '../domain/text.js';
import type { ChatProvider, ContextSource, ProviderReply, ReplyInput } from './types.js';

const NOTICE =
  'I am the built-in responder: no language model is configured, so I answer only by quoting the retrieved documents.';
const MAX_QUOTES = 3;
const MAX_QUOTE_CHARS = 400;

interface Candidate {
  n: number;
  text: string;
  overlap: number;
  order: number;
}

/**
 * Default provider, no network: quotes the sentences of the retrieved context that share the most
 * words with the question, each with its `[n]` citation marker.
 */
export class BuiltinExtractiveProvider implements ChatProvider {
  readonly id = 'builtin-extractive';

  async reply({ context, message }: ReplyInput): Promise<ProviderReply> {
    const usable = context.filter((s) => s.text.trim().length > 0);
    if (usable.length === 0) {
      return {
        content: `I found nothing relevant to your question in the retrieved documents. ${NOTICE}`,
        citationsUsed: [],
      };
    }
    const picked = pickSentences(usable, message);
    const lines = picked.map((c) => `- "${clip(c.text, MAX_QUOTE_CHARS)}" [${c.n}]`);
    const lead = picked.some((c) => c.overlap > 0)
      ? 'From the retrieved documents:'
      : 'None of the retrieved passages matches your question closely; the nearest passage says:';
    const citationsUsed = [...new Set(picked.map((c) => c.n))];
    return { content: `${lead}\n${lines.join('\n')}\n\n${NOTICE}`, citationsUsed };
  }
}

function pickSentences(sources: ContextSource[], question: string): Candidate[] {
  const wanted = new Set(terms(question));
  const candidates: Candidate[] = [];
  let order = 0;
  for (const source of sources) {
    for (const text of sentences(source.text)) {
      const words = new Set(terms(text));
      let overlap = 0;
      for (const w of wanted) if (words.has(w)) overlap++;
      candidates.push({ n: source.citation.id, text, overlap, order: order++ });
    }
  }
  const matching = candidates.filter((c) => c.overlap > 0);
  if (matching.length === 0) return candidates.slice(0, 1);
  return matching
    .sort((a, b) => b.overlap - a.overlap || a.order - b.order)
    .slice(0, MAX_QUOTES)
    .sort((a, b) => a.order - b.order);
}
