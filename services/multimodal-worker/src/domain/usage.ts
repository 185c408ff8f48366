import { CHARS_PER_SLICE, WorkBudget } from './work-budget.js';

/**
 * Rough token count for `usage`: words and punctuation marks, the way most BPE tokenizers split
 * at least once. Not the provider's tokenizer; good enough for accounting and rate limits.
 */
export function roughTokenCount(text: string): number {
  const m = text.match(/[\p{L}\p{N}]+|[^\s\p{L}\p{N}]/gu);
  return m ? m.length : 0;
}

/** roughTokenCount over a whole batch, yielding to the event loop between slices. */
export async function countTokens(texts: readonly string[]): Promise<number> {
  const budget = new WorkBudget(CHARS_PER_SLICE);
  let tokens = 0;
  for (const text of texts) {
    tokens += roughTokenCount(text);
    await budget.spend(text.length);
  }
  return tokens;
}
