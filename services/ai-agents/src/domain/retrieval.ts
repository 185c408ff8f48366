import type { ContextSource } from '../providers/types.js';
import type { Agent, Citation, ContextRequest, ContextResponse } from './types.js';

/** The part of the kit's PeerClient this service uses. */
export interface ContextPeer {
  post<T>(path: string, body: unknown, opts?: { requestId?: string; idempotent?: boolean }): Promise<T>;
}

export function contextRequest(agent: Agent, query: string): ContextRequest {
  return {
    query,
    limit: agent.settings.contextLimit,
    maxChars: agent.settings.maxContextChars,
    ...(agent.settings.filters ? { filters: agent.settings.filters } : {}),
  };
}

/**
 * Fetches context for a question. The call only reads, so it is marked idempotent and may be retried
 * by the peer client; a dead proxy surfaces as the kit's PeerUnavailable (503).
 */
export async function fetchContext(peer: ContextPeer, agent: Agent, query: string, requestId?: string): Promise<ContextSource[]> {
  const res = await peer.post<ContextResponse>('/api/v1/context', contextRequest(agent, query), {
    ...(requestId ? { requestId } : {}),
    idempotent: true,
  });
  return toSources(res);
}

/** Pairs each section with its citation (same documentId and chunkIndex), numbering them as the proxy did. */
export function toSources(res: Partial<ContextResponse> | null | undefined): ContextSource[] {
  const sections = Array.isArray(res?.sections) ? res.sections : [];
  const citations = Array.isArray(res?.citations) ? res.citations : [];
  const used = new Set<number>();
  return sections.map((section, i) => {
    const match =
      citations.find((c) => !used.has(c.id) && c.documentId === section.documentId && c.chunkIndex === section.chunkIndex) ??
      citations.find((c) => !used.has(c.id) && c.documentId === section.documentId);
    const citation: Citation = match ?? {
      id: i + 1,
      documentId: String(section.documentId),
      title: String(section.title ?? ''),
      chunkIndex: Number(section.chunkIndex ?? 0),
    };
    used.add(citation.id);
    return { n: citation.id, citation, text: String(section.text ?? ''), score: Number(section.score ?? 0) };
  });
}
