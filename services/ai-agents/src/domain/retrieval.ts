import { ContextResponse, Filters, QUERY_MAX_LENGTH, type ContextRequest, type ContextSection } from '@aicache/contracts';
import type { Principal } from '@aicache/auth';
import { errors, type PeerClient } from '@aicache/service-kit';
import { Compile } from 'typebox/compile';
import type { Agent } from './types.js';

/**
 * Who a call to retrieval-proxy acts for: the tenant whose documents it may search and, when the request had one,
 * the principal behind it.
 */
export interface ActingFor {
  tenant: string;
  principal?: Principal;
}

/** What a context call carries besides its body. Every call says whom it acts for: none goes out for nobody. */
export interface ContextCallOptions {
  requestId?: string;
  idempotent?: boolean;
  actingFor: ActingFor;
}

/** retrieval-proxy as the domain calls it. */
export interface ContextPeer {
  post<T>(path: string, body: unknown, opts: ContextCallOptions): Promise<T>;
}

/**
 * The headers that prove to retrieval-proxy whom a call acts for: app.ts sends a signed service token naming the
 * principal's tenant, user and scopes (`serviceTokenHeaders` of @aicache/auth); NO_CREDENTIALS sends none (tests of a fake proxy).
 */
export type ProxyCredentials = (actingFor: ActingFor) => Promise<Record<string, string>> | Record<string, string>;
export const NO_CREDENTIALS: ProxyCredentials = () => ({});

/** A ContextPeer on the kit's PeerClient: each call gets the headers `credentials` gives for whom it acts for. */
export function contextPeer(client: Pick<PeerClient, 'post' | 'ready'>, credentials: ProxyCredentials): ContextPeer & { ready: () => Promise<boolean> } {
  return {
    post: async <T>(path: string, body: unknown, { actingFor, ...opts }: ContextCallOptions) =>
      client.post<T>(path, body, { ...opts, headers: await credentials(actingFor) }),
    ready: () => client.ready(),
  };
}

const PROXY = 'retrieval-proxy';
const contextAnswer = Compile(ContextResponse);
const filtersCheck = Compile(Filters);

/** Joins the start and the end of a message that is too long to be a query whole. */
const GAP = ' … ';
const PART = Math.floor((QUERY_MAX_LENGTH - GAP.length) / 2);

const isHigh = (code: number) => code >= 0xd800 && code <= 0xdbff;
const isLow = (code: number) => code >= 0xdc00 && code <= 0xdfff;

/**
 * The retrieval query for a message. Whitespace runs become one space. A message still longer than the proxy's
 * QUERY_MAX_LENGTH (2,000 characters) keeps its first and its last ~1,000 characters, each cut at a word
 * boundary and never inside a surrogate pair, joined by " … ": the question of a long message is usually at its
 * start or its end. Only the query is shortened; the whole message is stored and given to the model.
 */
export function queryFromMessage(message: string): string {
  const text = message.replace(/\s+/gu, ' ').trim();
  if (text.length <= QUERY_MAX_LENGTH) return text;
  let head = text.slice(0, PART);
  if (isHigh(head.charCodeAt(head.length - 1))) head = head.slice(0, -1);
  const lastSpace = head.lastIndexOf(' ');
  if (lastSpace > PART / 2) head = head.slice(0, lastSpace);
  let tail = text.slice(text.length - PART);
  if (isLow(tail.charCodeAt(0))) tail = tail.slice(1);
  const firstSpace = tail.indexOf(' ');
  if (firstSpace >= 0 && firstSpace < PART / 2) tail = tail.slice(firstSpace + 1);
  return `${head.trimEnd()}${GAP}${tail.trimStart()}`;
}

/**
 * Why retrieval-proxy would refuse these filters, or undefined when it would take them. The routes check new
 * filters with the same schema (400); this catches agents stored before they did.
 */
export function filtersProblem(filters: unknown): string | undefined {
  if (filters === undefined || filtersCheck.Check(filters)) return undefined;
  const first = filtersCheck.Errors(filters)[0];
  return first ? `settings.filters${first.instancePath} ${first.message}` : 'settings.filters is invalid';
}

export function contextRequest(agent: Agent, message: string): ContextRequest {
  return {
    query: queryFromMessage(message),
    limit: agent.settings.contextLimit,
    maxChars: agent.settings.maxContextChars,
    ...(agent.settings.filters && Object.keys(agent.settings.filters).length > 0 ? { filters: agent.settings.filters } : {}),
    ...(agent.settings.hybrid !== undefined ? { hybrid: agent.settings.hybrid } : {}),
  };
}

/**
 * The 409 for a proxy that refused an agent's hybrid ranking (400: its engine has none), naming the setting to change;
 * undefined for any other failure.
 */
export function hybridRefused(agent: Agent, err: unknown): Error | undefined {
  const e = err as { peerStatus?: number; message?: unknown };
  if (agent.settings.hybrid !== true || e.peerStatus !== 400 || !/hybrid/i.test(String(e.message))) return undefined;
  return errors.Conflict(
    `agent '${agent.id}' asks for hybrid ranking, which retrieval-proxy refuses (${String(e.message)}); ` +
      `change it with PATCH /api/v1/agents/${agent.id} {"settings": {"hybrid": false}}`,
  );
}

/**
 * The context sections for a message, as the proxy numbered and cited them. The call only reads, so it is
 * marked idempotent and may be retried by the peer client; a dead proxy surfaces as the kit's
 * PeerUnavailable (503), an answer that does not match the contract as PeerError (502). The call acts for
 * `actingFor`, whose documents are the only ones it may search.
 */
export async function fetchContext(peer: ContextPeer, actingFor: ActingFor, agent: Agent, message: string, requestId?: string): Promise<ContextSection[]> {
  const answer = await peer.post<unknown>('/api/v1/context', contextRequest(agent, message), {
    ...(requestId ? { requestId } : {}),
    idempotent: true,
    actingFor,
  });
  if (!contextAnswer.Check(answer)) {
    const first = contextAnswer.Errors(answer)[0];
    throw errors.PeerError(PROXY, 200, `its context answer does not match the contract (${first ? `${first.instancePath || '/'} ${first.message}` : 'invalid'})`);
  }
  return answer.sections;
}
