import { createHash } from 'node:crypto';

export function sha256Hex(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * Rough token count for `usage`: words and punctuation marks, the way most BPE tokenizers split
 * at least once. Not the provider's tokenizer; good enough for accounting and rate limits.
 */
export function roughTokenCount(text: string): number {
  const m = text.match(/[\p{L}\p{N}]+|[^\s\p{L}\p{N}]/gu);
  return m ? m.length : 0;
}
