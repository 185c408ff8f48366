/**
 * What went wrong on an outbound HTTP call, decided in one place for every client in the stack (the peer
 * client, the embeddings and chat providers), so "the other side is down" means the same thing everywhere.
 *
 * - `refused`: nothing listens there (ECONNREFUSED). The request never left: always safe to retry.
 * - `unreachable`: no route, no name, or the connection broke (reset, closed, socket error).
 * - `timed-out`: no connection, no headers or no complete body within the time allowed.
 * - `bad-answer`: the other side answered something that is not HTTP or not the JSON it should be.
 *
 * The first three mean "unavailable" (503 to our caller); `bad-answer` means the other side is broken (502).
 */
export type NetworkFailureKind = 'refused' | 'unreachable' | 'timed-out' | 'bad-answer';

export interface NetworkFailure {
  kind: NetworkFailureKind;
  /** The system or undici error code, when there is one. */
  code: string | undefined;
  /** True when the request cannot have reached the other side, so even a non-idempotent call may be sent again. */
  notSent: boolean;
  /** One line for an error message, e.g. `no answer within 200 ms`, `ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:1`. */
  detail: string;
}

export interface ClassifyOptions {
  /** The time the call was allowed, for the message of a timeout. */
  timeoutMs?: number;
  /** The caller's own timeout signal fired (its abort reason may not say so). */
  timedOut?: boolean;
}

const REFUSED = new Set(['ECONNREFUSED']);
// Connection never made: name lookups and routing.
const NO_ROUTE = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN']);
// Connection made, then lost: the request may have been received.
const BROKEN = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);
const TIMEOUTS = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);
const CONNECT_TIMEOUT = 'UND_ERR_CONNECT_TIMEOUT';

/** The first error code on the error or along its `cause` chain (fetch wraps undici's errors in a TypeError). */
export function networkErrorCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && e !== null && typeof e === 'object'; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function isTimeoutName(err: unknown): boolean {
  const name = (err as { name?: unknown } | null)?.name;
  return name === 'TimeoutError' || (name === 'AbortError' && (err as { cause?: { name?: unknown } }).cause?.name === 'TimeoutError');
}

function messageOf(err: unknown, code: string | undefined): string {
  const message = err instanceof Error ? err.message : String(err);
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}

/** Classifies an error thrown by an HTTP call (undici request/fetch) or while reading its answer. */
export function classifyNetworkError(err: unknown, opts: ClassifyOptions = {}): NetworkFailure {
  const code = networkErrorCode(err);
  const within = opts.timeoutMs !== undefined ? ` within ${opts.timeoutMs} ms` : ' in time';
  if (code === CONNECT_TIMEOUT) {
    return { kind: 'timed-out', code, notSent: true, detail: `connect timed out${opts.timeoutMs !== undefined ? ` after ${opts.timeoutMs} ms` : ''}` };
  }
  if (opts.timedOut || isTimeoutName(err) || (code !== undefined && TIMEOUTS.has(code))) {
    return { kind: 'timed-out', code, notSent: false, detail: `no answer${within}` };
  }
  if (code !== undefined && REFUSED.has(code)) return { kind: 'refused', code, notSent: true, detail: messageOf(err, code) };
  if (code !== undefined && NO_ROUTE.has(code)) return { kind: 'unreachable', code, notSent: true, detail: messageOf(err, code) };
  if (code !== undefined && BROKEN.has(code)) return { kind: 'unreachable', code, notSent: false, detail: messageOf(err, code) };
  // Parser errors (HPE_*), an answer over the size allowed, JSON that does not parse: the other side answered, badly.
  return { kind: 'bad-answer', code, notSent: false, detail: messageOf(err, code) };
}

/** True for the kinds that mean the other side is unavailable rather than broken. */
export function isUnavailable(failure: NetworkFailure): boolean {
  return failure.kind !== 'bad-answer';
}
