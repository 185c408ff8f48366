import { Pool, type Dispatcher } from 'undici';
import { errors } from './errors.js';
import { redactUrl } from './logger.js';
import { classifyNetworkError, type NetworkFailure } from './network-errors.js';

export interface PeerClientOptions {
  /** The peer's name, used in errors and logs, e.g. 'multimodal-worker'. */
  name: string;
  /** http://host:port, optionally with a path prefix. */
  baseUrl: string;
  /** Per attempt: connect, headers and body each, and the whole attempt. Default 5000. */
  timeoutMs?: number;
  /** Extra attempts for idempotent calls on connection errors and 502/503/504. Default 2. */
  retries?: number;
  /** Connections to keep to the peer. Default 16. */
  connections?: number;
  /** Backoff before each retry, ms; the last value repeats. Default [50, 150]. */
  backoffMs?: number[];
}

export interface PeerRequestOptions {
  /** Forwarded as x-request-id so one request can be followed across services. */
  requestId?: string;
  /** Marks a POST safe to repeat (e.g. embeddings of the same input). GET/HEAD/PUT/DELETE always are. */
  idempotent?: boolean;
  headers?: Record<string, string>;
  query?: Record<string, string | number | boolean | undefined>;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Extra fields on the errors PeerClient throws, for callers that want to react to the peer's answer. */
export interface PeerFailure {
  peer: string;
  /** The peer's HTTP status (PeerError only). */
  peerStatus?: number;
  /** The peer's error code from its JSON error body, when it sent one. */
  peerCode?: string;
}

type Method = 'GET' | 'HEAD' | 'PUT' | 'DELETE' | 'POST' | 'PATCH';
const RETRY_STATUS = new Set([502, 503, 504]);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** HTTP client for one peer service: pooled connections, timeouts, retries for idempotent calls, JSON in and out. */
export class PeerClient {
  readonly name: string;
  readonly baseUrl: string;
  private readonly pool: Pool;
  private readonly prefix: string;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly backoffMs: number[];

  constructor(opts: PeerClientOptions) {
    const url = new URL(opts.baseUrl);
    this.name = opts.name;
    this.baseUrl = opts.baseUrl;
    this.prefix = url.pathname.replace(/\/+$/, '');
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.retries = opts.retries ?? 2;
    this.backoffMs = opts.backoffMs ?? [50, 150];
    this.pool = new Pool(url.origin, {
      connections: opts.connections ?? 16,
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
      connect: { timeout: this.timeoutMs },
    });
  }

  get<T = unknown>(path: string, opts?: PeerRequestOptions): Promise<T> {
    return this.request<T>('GET', path, undefined, opts);
  }

  post<T = unknown>(path: string, body?: unknown, opts?: PeerRequestOptions): Promise<T> {
    return this.request<T>('POST', path, body, opts);
  }

  put<T = unknown>(path: string, body?: unknown, opts?: PeerRequestOptions): Promise<T> {
    return this.request<T>('PUT', path, body, opts);
  }

  delete<T = unknown>(path: string, opts?: PeerRequestOptions): Promise<T> {
    return this.request<T>('DELETE', path, undefined, opts);
  }

  /** GET /health on the peer: true when it answers 200 in time. Never throws, never retries. */
  async ready(timeoutMs = Math.min(this.timeoutMs, 2000)): Promise<boolean> {
    try {
      const res = await this.pool.request({ method: 'GET', path: `${this.prefix}/health`, signal: AbortSignal.timeout(timeoutMs), headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
      await res.body.dump();
      return res.statusCode === 200;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await this.pool.close();
  }

  async request<T = unknown>(method: Method, path: string, body?: unknown, opts: PeerRequestOptions = {}): Promise<T> {
    const idempotent = method === 'GET' || method === 'HEAD' || method === 'PUT' || method === 'DELETE' || opts.idempotent === true;
    const attempts = 1 + (idempotent ? this.retries : 0);
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    const headers: Record<string, string> = { accept: 'application/json', ...opts.headers };
    if (opts.requestId) headers['x-request-id'] = opts.requestId;
    let payload: string | undefined;
    if (body !== undefined) {
      payload = JSON.stringify(body);
      headers['content-type'] = 'application/json';
    }
    const fullPath = this.prefix + path + queryString(opts.query);

    for (let attempt = 1; ; attempt++) {
      const last = attempt >= attempts;
      const timeout = AbortSignal.timeout(timeoutMs);
      const signal = opts.signal ? AbortSignal.any([timeout, opts.signal]) : timeout;
      let res: Dispatcher.ResponseData;
      try {
        res = await this.pool.request({ method, path: fullPath, headers, body: payload, signal, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
      } catch (err) {
        if (opts.signal?.aborted) throw err;
        const failure = classifyNetworkError(err, { timeoutMs, timedOut: timeout.aborted });
        // A call that may have reached the peer is sent again only when it is idempotent (attempts > 1 then).
        const retryable = failure.notSent || failure.kind === 'unreachable';
        if (retryable && !last) {
          await sleep(this.backoff(attempt));
          continue;
        }
        throw this.failed(failure, err);
      }

      if (res.statusCode >= 200 && res.statusCode < 300) {
        try {
          return (await readJson(res)) as T;
        } catch (err) {
          const failure = classifyNetworkError(err, { timeoutMs, timedOut: timeout.aborted });
          if (failure.kind === 'bad-answer') throw this.peerError(res.statusCode, `unreadable response: ${failure.detail}`);
          throw this.failed(failure, err);
        }
      }

      if (RETRY_STATUS.has(res.statusCode) && !last) {
        await res.body.dump().catch(() => undefined);
        await sleep(this.backoff(attempt));
        continue;
      }
      const { message, code } = await readError(res);
      throw this.peerError(res.statusCode, message, code);
    }
  }

  private backoff(attempt: number): number {
    return this.backoffMs[Math.min(attempt - 1, this.backoffMs.length - 1)] ?? 0;
  }

  /** An answer that is not HTTP is the peer's fault (502); no answer at all means it is unavailable (503). */
  private failed(failure: NetworkFailure, cause: unknown) {
    if (failure.kind !== 'bad-answer') return this.unavailable(failure.detail, cause);
    const err = this.peerError(0, failure.detail);
    delete err.peerStatus;
    err.message = `${this.name} answered badly: ${redactUrl(failure.detail)}`;
    return Object.assign(err, { cause });
  }

  private unavailable(detail: string, cause: unknown) {
    const err = errors.PeerUnavailable(this.name, redactUrl(detail));
    Object.assign(err, { peer: this.name, cause });
    return err as typeof err & PeerFailure;
  }

  private peerError(status: number, detail: string, code?: string) {
    const err = errors.PeerError(this.name, status, redactUrl(detail));
    Object.assign(err, { peer: this.name, peerStatus: status, ...(code ? { peerCode: code } : {}) });
    return err as typeof err & PeerFailure;
  }
}

function queryString(query: PeerRequestOptions['query']): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.append(k, String(v));
  const s = params.toString();
  return s ? `?${s}` : '';
}

async function readJson(res: Dispatcher.ResponseData): Promise<unknown> {
  const text = await res.body.text();
  if (res.statusCode === 204 || text.length === 0) return undefined;
  const type = String(res.headers['content-type'] ?? '');
  if (type.includes('json')) return JSON.parse(text);
  return text;
}

async function readError(res: Dispatcher.ResponseData): Promise<{ message: string; code?: string }> {
  let text = '';
  try {
    text = await res.body.text();
  } catch {
    return { message: `status ${res.statusCode}` };
  }
  try {
    const parsed = JSON.parse(text) as { message?: unknown; code?: unknown; error?: unknown };
    // The stack's {statusCode, code, error, message}, or OpenAI's {error: {message, code}} (the worker's OpenAI-compatible routes).
    const body = parsed.error !== null && typeof parsed.error === 'object' ? (parsed.error as { message?: unknown; code?: unknown }) : parsed;
    const message = typeof body.message === 'string' ? body.message : typeof parsed.error === 'string' ? parsed.error : `status ${res.statusCode}`;
    return { message, ...(typeof body.code === 'string' ? { code: body.code } : {}) };
  } catch {
    return { message: text.trim().slice(0, 200) || `status ${res.statusCode}` };
  }
}
