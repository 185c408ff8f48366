import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import type { AppControllerRoute } from '@bull-board/api/typings/app';
import { FastifyAdapter } from '@bull-board/fastify';
import type { Queue } from 'bullmq';
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchema } from 'fastify';

/** An admin check, as `app.auth.require('admin')` gives: throws (with a statusCode) when the request may not pass. */
export type DashboardAuthHook = (request: FastifyRequest, reply: FastifyReply) => Promise<void> | void;

export interface QueueDashboardOptions {
  /** The BullMQ queues to show. */
  queues: readonly Queue[];
  /** Runs before every dashboard request (on the bearer header, or on the credential in the sign-in cookie); must refuse non-admins. */
  onRequest: DashboardAuthHook;
  /** Where the UI is mounted. Default `/admin/queues`. */
  basePath?: string;
  /** How long the cookie given by the sign-in form is valid, in seconds. Default 900 (15 minutes). */
  cookieTtlSeconds?: number;
  /**
   * Secret the dashboard cookie is sealed with. Default: a random key made once per process, so a
   * cookie is valid only on the process that gave it (and none survives a restart); replicas behind
   * one balancer pass a shared secret (at least 32 bytes) so that a cookie made by one is honoured by
   * the others.
   */
  cookieSecret?: string | Buffer;
  /** Marks the cookie Secure. Default: when the request came over https (as Fastify's trustProxy sees it). */
  secureCookie?: boolean;
  /** Hides the buttons that change queues (retry, remove, clean, pause...). Default false. */
  readOnly?: boolean;
  /** Title shown in the page header. Default "aicache queues". */
  title?: string;
  /** How long a dashboard API call may wait on the queues' Redis before it answers 503. Default 5000. */
  timeoutMs?: number;
}

export interface QueueDashboard {
  /** The path the UI answers on, without a trailing slash. */
  readonly basePath: string;
  /** Shows one more queue. */
  addQueue(queue: Queue): void;
  /** Stops showing a queue, by name. */
  removeQueue(name: string): void;
}

export const DASHBOARD_COOKIE = 'aicache_queues';
const DEFAULT_BASE_PATH = '/admin/queues';
const DEFAULT_COOKIE_TTL_S = 900;
// Kept out of the OpenAPI document, as bull-board's own routes are (`hide` is read by @fastify/swagger).
const HIDDEN = { hide: true } as FastifySchema;

/*
 * The dashboard's pages are admin pages: they may not be framed (clickjacking of its retry/remove/clean
 * buttons), and load nothing from elsewhere. bull-board's page asks Google for its fonts; that link is taken
 * out (the UI falls back to the system fonts), so opening the dashboard tells no third party who the
 * admins are and works offline. Inline styles are the UI's own (style attributes React sets); its scripts
 * all come from its static files.
 */
const PAGE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');
const EXTERNAL_FONTS = /<link[^>]+href="https:\/\/fonts\.(?:googleapis|gstatic)\.com[^"]*"[^>]*>\s*/g;

/*
 * Signing in from a browser. A browser opening the page cannot add an Authorization header. The
 * credential is not taken in the address (`?token=`): Fastify logs every request's URL before any hook
 * runs, and an address also stays in the history and goes out in Referer headers. Instead
 * `<basePath>/login` is a small form that POSTs the credential in the body; when the admin hook accepts
 * it (as if it had come as `Authorization: Bearer`), the answer is a 303 to the dashboard with a cookie:
 *   - the cookie is the credential and an expiry sealed with AES-256-GCM under a key only the server holds:
 *     unreadable outside it (a copy taken from a browser profile does not reveal the long-lived
 *     credential) and refused once expired (15 minutes by default) or altered in any way;
 *   - on every dashboard request the server opens it and runs the admin hook on the credential inside, as
 *     for a bearer header: a credential revoked or stripped of its admin scope stops working at once, and
 *     the service's own bookkeeping (who did what: the audit of admin actions) sees the same principal;
 *   - HttpOnly (no script on any page reads it), SameSite=Strict (no other site can make the browser send
 *     it, which is what guards the dashboard's POST/PUT actions against cross-site requests),
 *     Path=<basePath> (sent to nothing else on the service), Secure over https.
 * A request with an Authorization header is checked on that header, cookie or not (scripts and curl use
 * the dashboard's API that way).
 */

function base64url(buf: Buffer): string {
  return buf.toString('base64url');
}

interface Sealer {
  seal(credential: string, expiresAt: number): string;
  /** The credential inside a cookie made by seal(), or undefined when it is expired, altered or not one. */
  open(value: string, now: number): string | undefined;
}

function makeSealer(secret: string | Buffer | undefined): Sealer {
  if (secret !== undefined && Buffer.from(secret).length < 32) throw new Error('cookieSecret must be at least 32 bytes long');
  // A key of its own for this use, whatever else the shared secret may serve.
  const key = secret === undefined ? randomBytes(32) : createHash('sha256').update('aicache queue dashboard cookie\0').update(Buffer.from(secret)).digest();
  return {
    seal(credential, expiresAt) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      const sealed = Buffer.concat([cipher.update(JSON.stringify({ e: expiresAt, c: credential }), 'utf8'), cipher.final()]);
      return base64url(Buffer.concat([iv, cipher.getAuthTag(), sealed]));
    },
    open(value, now) {
      const raw = Buffer.from(value, 'base64url');
      if (raw.length < 12 + 16 + 1) return undefined;
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
        decipher.setAuthTag(raw.subarray(12, 28));
        const plain = Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
        const { e, c } = JSON.parse(plain) as { e?: unknown; c?: unknown };
        if (typeof e !== 'number' || typeof c !== 'string' || e <= now) return undefined;
        return c;
      } catch {
        return undefined;
      }
    },
  };
}

function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function loginPage(basePath: string, title: string, problem?: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}: sign in</title>
<link rel="icon" href="data:,">
<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem}
input{width:100%;box-sizing:border-box;padding:.5rem;margin:.5rem 0}button{padding:.5rem 1rem}.problem{color:#b00020}</style>
</head><body>
<h1>${escapeHtml(title)}</h1>
${problem ? `<p class="problem" role="alert">${escapeHtml(problem)}</p>` : ''}
<form method="post" action="${escapeHtml(basePath)}/login">
<label for="token">Admin credential (CACHE_ADMIN_TOKEN or an API key with the admin scope)</label>
<input id="token" name="token" type="password" autocomplete="off" required autofocus>
<button type="submit">Sign in</button>
</form>
</body></html>
`;
}

function unavailable(message: string, cause?: unknown): Error {
  return Object.assign(new Error(message, cause === undefined ? undefined : { cause }), { statusCode: 503, code: 'QUEUES_UNAVAILABLE', headers: { 'retry-after': '5' } });
}

/**
 * bull-board's API calls wait on the queues' Redis for as long as its client retries (for ever, on a
 * connection made for a BullMQ worker). Each is bounded here: past `timeoutMs`, or when Redis fails it,
 * the call answers 503 and the page (which needs no Redis) stays up and says the data is unavailable.
 */
class BoundedFastifyAdapter extends FastifyAdapter {
  readonly #timeoutMs: number;

  constructor(timeoutMs: number) {
    super();
    this.#timeoutMs = timeoutMs;
  }

  override setApiRoutes(routes: AppControllerRoute[]): FastifyAdapter {
    const timeoutMs = this.#timeoutMs;
    return super.setApiRoutes(
      routes.map((route) => ({
        ...route,
        handler: async (request) => {
          let timer: NodeJS.Timeout | undefined;
          const work = Promise.resolve().then(() => route.handler(request));
          // A call given up on may still fail later: that failure is no longer anyone's to answer.
          work.catch(() => undefined);
          const deadline = new Promise<never>((_resolve, reject) => {
            timer = setTimeout(() => reject(unavailable(`The queues' Redis did not answer within ${timeoutMs} ms; try again shortly`)), timeoutMs);
          });
          try {
            return await Promise.race([work, deadline]);
          } catch (err) {
            const status = (err as { statusCode?: unknown }).statusCode;
            if (typeof status === 'number' && status < 500) throw err;
            if ((err as { code?: unknown }).code === 'QUEUES_UNAVAILABLE') throw err;
            throw unavailable(`The queues' Redis failed the request: ${(err as Error).message}`, err);
          } finally {
            clearTimeout(timer);
          }
        },
      })),
    );
  }
}

function normalizeBasePath(path: string): string {
  if (!path.startsWith('/')) throw new Error(`basePath must start with "/": ${path}`);
  const trimmed = path.replace(/\/+$/, '');
  if (!trimmed) throw new Error('basePath cannot be "/": the dashboard needs a path of its own');
  return trimmed;
}

/**
 * Mounts the BullMQ queue UI (bull-board) at `basePath` (default `/admin/queues`), every page, asset and
 * API route behind `onRequest` (the admin check), run on the bearer header or on the credential sealed in
 * the short-lived cookie the sign-in form at `<basePath>/login` gives.
 * Call before `app.listen()`/`app.ready()`.
 */
export async function mountQueueDashboard(app: FastifyInstance, opts: QueueDashboardOptions): Promise<QueueDashboard> {
  const basePath = normalizeBasePath(opts.basePath ?? DEFAULT_BASE_PATH);
  const ttlS = opts.cookieTtlSeconds ?? DEFAULT_COOKIE_TTL_S;
  if (!Number.isInteger(ttlS) || ttlS <= 0) throw new Error(`cookieTtlSeconds must be a positive whole number: ${ttlS}`);
  const sealer = makeSealer(opts.cookieSecret);
  const check = opts.onRequest;
  const readOnlyMode = opts.readOnly ?? false;
  const title = opts.title ?? 'aicache queues';

  const timeoutMs = opts.timeoutMs ?? 5000;
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new Error(`timeoutMs must be a positive whole number: ${timeoutMs}`);
  const serverAdapter = new BoundedFastifyAdapter(timeoutMs);
  serverAdapter.setBasePath(basePath);
  const board = createBullBoard({
    queues: opts.queues.map((q) => new BullMQAdapter(q, { readOnlyMode })),
    serverAdapter,
    options: { uiConfig: { boardTitle: title } },
  });
  // bull-board answers every error of its routes itself, with a body of its own and the error's message
  // even on a 500; throwing here hands the error to the application's error handler instead (Fastify
  // passes an error thrown by a scope's handler to the parent's), so a refused credential or a Redis
  // failure reads as everywhere else on the service.
  serverAdapter.setErrorHandler((error) => {
    throw error;
  });

  const giveCookie = (request: FastifyRequest, reply: FastifyReply, credential: string): void => {
    const value = sealer.seal(credential, Date.now() + ttlS * 1000);
    const secure = opts.secureCookie ?? request.protocol === 'https';
    reply.header(
      'set-cookie',
      `${DASHBOARD_COOKIE}=${value}; Max-Age=${ttlS}; Path=${basePath}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`,
    );
  };

  await app.register(async (scope) => {
    // A service's own authentication (packages/auth) runs on every route and wants a bearer header; the
    // dashboard's routes opt out of it (`config.auth = false`, its convention for routes that check for
    // themselves), so that the sign-in form and cookie-carrying requests reach the dashboard's check below,
    // which runs the admin hook on the bearer header or on the credential sealed in the cookie.
    scope.addHook('onRoute', (route) => {
      route.config = { ...(route.config as object | undefined), auth: false } as typeof route.config;
    });
    scope.addHook('onSend', async (_request, reply, payload) => {
      const type = reply.getHeader('content-type');
      if (typeof type !== 'string' || !type.startsWith('text/html')) return payload;
      reply.header('content-security-policy', PAGE_CSP);
      reply.header('x-content-type-options', 'nosniff');
      reply.header('referrer-policy', 'same-origin');
      return typeof payload === 'string' ? payload.replace(EXTERNAL_FONTS, '') : payload;
    });

    // The sign-in form posts application/x-www-form-urlencoded, which Fastify does not read by itself
    // (unless the application already taught it to).
    if (!scope.hasContentTypeParser('application/x-www-form-urlencoded')) {
      scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 4096 }, (_request, body, done) => {
        done(null, Object.fromEntries(new URLSearchParams(body as string)));
      });
    }

    scope.get(`${basePath}/login`, { schema: HIDDEN }, async (_request, reply) => {
      return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(loginPage(basePath, title));
    });

    scope.post(`${basePath}/login`, { schema: HIDDEN }, async (request, reply) => {
      const body = request.body as Record<string, unknown> | undefined;
      const token = body && typeof body === 'object' ? body['token'] : undefined;
      if (typeof token !== 'string' || token.trim() === '') {
        const err = new Error('Send the admin credential as the form field "token" (application/x-www-form-urlencoded)');
        throw Object.assign(err, { statusCode: 400, code: 'INVALID_LOGIN' });
      }
      const credential = token.trim();
      request.headers.authorization = `Bearer ${credential}`;
      try {
        await check(request, reply);
      } catch (err) {
        const status = (err as { statusCode?: number }).statusCode;
        // A wrong or insufficient credential shows the form again, saying so; anything else (the auth store
        // unreachable...) is the application's error handler's to answer.
        if (status !== 401 && status !== 403) throw err;
        const problem = status === 401 ? 'That credential was not accepted.' : 'That credential may not open the queue dashboard (it needs the admin scope).';
        return reply.code(status).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(loginPage(basePath, title, problem));
      }
      giveCookie(request, reply, credential);
      return reply.header('cache-control', 'no-store').redirect(`${basePath}/`, 303);
    });

    await scope.register(async (guarded) => {
      guarded.addHook('onRequest', async (request, reply) => {
        const bearerSent = request.headers.authorization !== undefined;
        const cookie = bearerSent ? undefined : readCookie(request.headers.cookie, DASHBOARD_COOKIE);
        const credential = cookie === undefined ? undefined : sealer.open(cookie, Date.now());
        if (credential !== undefined) request.headers.authorization = `Bearer ${credential}`;
        try {
          await check(request, reply);
        } catch (err) {
          // A person opening a page without a (still valid) sign-in gets the sign-in form, still as a 401;
          // scripts, the UI's own API calls and assets get the application's error.
          const page = request.method === 'GET' && !bearerSent && (request.headers.accept ?? '').includes('text/html');
          if (!page || (err as { statusCode?: number }).statusCode !== 401) throw err;
          const problem = cookie === undefined ? undefined : 'Your sign-in has expired or its credential was revoked: sign in again.';
          return reply.code(401).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(loginPage(basePath, title, problem));
        }
      });
      await guarded.register(serverAdapter.registerPlugin(), { prefix: basePath });
    });
  });

  return {
    basePath,
    addQueue: (queue) => board.addQueue(new BullMQAdapter(queue, { readOnlyMode })),
    removeQueue: (name) => board.removeQueue(name),
  };
}
