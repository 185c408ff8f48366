import type { ContextSection } from '@aicache/contracts';
import type { Agent, MemoryItem } from '../domain/types.js';

/** One retrieved passage as retrieval-proxy sent it: the provider cites it as `[citation.id]`. */
export type ContextSource = ContextSection;

export interface ReplyInput {
  agent: Agent;
  /** Recent memory of this agent, oldest first. */
  memory: MemoryItem[];
  /** Retrieved passages, best first, as retrieval-proxy numbered them. */
  context: ContextSource[];
  /** The user's message. */
  message: string;
  /** Forwarded to providers that call out over HTTP. */
  requestId?: string;
}

export interface ProviderReply {
  content: string;
  /** The citation id of each context source the reply cites. */
  citationsUsed: number[];
}

/** Produces an assistant reply from the agent, its memory and the retrieved context. */
export interface ChatProvider {
  /** Stable id, returned to clients as `provider`. */
  readonly id: string;
  reply(input: ReplyInput): Promise<ProviderReply>;
  close?(): Promise<void>;
}

/** The citation numbers `[n]` that appear in a text and exist among the sources, in first-seen order. */
export function citedNumbers(text: string, sources: ContextSource[]): number[] {
  const known = new Set(sources.map((s) => s.citation.id));
  const seen: number[] = [];
  for (const m of text.matchAll(/\[(\d{1,3})\]/g)) {
    const n = Number(m[1]);
    if (known.has(n) && !seen.includes(n)) seen.push(n);
  }
  return seen;
}
