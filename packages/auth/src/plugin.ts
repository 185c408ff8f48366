import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { ErrorResponse } from '@aicache/contracts';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import fp from 'fastify-plugin';
import { Type } from 'typebox';
import type { AuditLog } from './audit.js';
import { AuthUnavailable, BodyTooLarge, Forbidden, NotFound, RateLimited, Unauthorized } from './errors.js';
import { within } from './limits/shared.js';
import type { Authenticator } from './authenticator.js';
import { allows, DEFAULT_TENANT, TENANT_PATTERN, type Principal, type Scope } from './principal.js';
import { MIN_PASSWORD_LENGTH, type AuthStore, AuthError, type Revocation, type User } from './store.js';
import { serviceTokenHeaders, type ServiceTokens } from './service-token.js';
import type { LimitVerdict, PrincipalLimits } from './limits-port.js';


/** Route config: `auth: false` for an open route, or the scope it needs (default: read for GET/HEAD, write otherwise). */
export interface AuthRouteConfig {
  auth?: false | Scope;
}

export interface AuthApi {
  /** A hook (onRequest/preHandler) that lets through only a principal with `scope`; admin actions it lets through are audited. */
  require(scope: Scope): (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
  /** Headers for a call to a peer service on behalf of this request's principal (a signed service token). */
  peerHeaders(request: FastifyRequest): Promise<Record<string, string>>;
  /** Counts `count` embedding inputs against the principal's per-minute budget: 429 with Retry-After past it, 413 for a batch above the whole budget. */
  chargeInputs(request: FastifyRequest, reply: FastifyReply, count: number): Promise<void>;
  /**
   * The same budget as chargeInputs, for work done on a principal's behalf outside a request (a background job's
   * batch): `count` inputs are spent when allowed; a refusal says how long to wait, or that the batch alone is more
   * than the whole budget (`tooLarge`). Always allowed with authentication or the limit off, and for the bootstrap token.
   */
  spendInputs(principal: Principal | undefined, count: number): Promise<LimitVerdict>;
  /** Records an admin action in the audit stream and the log. */
  audit(request: FastifyRequest, action: string, target: string, status?: number): Promise<void>;
  readonly mode: 'on' | 'off';
  readonly store: AuthStore;
  readonly authenticator: Authenticator;
  readonly limits: PrincipalLimits | undefined;
}

declare module 'fastify' {
  interface FastifyInstance {
    auth: AuthApi;
  }
  interface FastifyRequest {
    /** Set by require('admin') on a mutating request: recorded in the audit stream once answered. */
    adminAction: boolean;
  }
}

export interface AuthPluginOptions {
  service: string;
  /** 'off' (development only): requests without a credential act for tenant `default` with read and write; admin routes still need an admin credential. */
  mode: 'on' | 'off';
  store: AuthStore;
  authenticator: Authenticator;
  tokens: ServiceTokens;
  audit: AuditLog;
  limits?: PrincipalLimits;
  /** Upper bound of each auth Redis call; then 503 (never a hang). */
  timeoutMs: number;
  /** Name of the bearer scheme in the OpenAPI document; every guarded operation declares it. */
  securityScheme?: string;
  prefix?: string;
}

const BEARER = /^Bearer +(\S+)\s*$/i;
/** Routes no credential is asked for: liveness, readiness, metrics and the API documents. */
const PUBLIC = /^\/(health|ready|metrics)$|^\/docs(\/|$)/;

const ANONYMOUS: Principal = { kind: 'anonymous', tenant: DEFAULT_TENANT, scopes: ['write'] };

function bearerOf(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  return typeof header === 'string' ? BEARER.exec(header)?.[1] : undefined;
}

function neededScope(request: FastifyRequest): Scope | false {
  const url = request.routeOptions.url;
  const config = request.routeOptions.config as AuthRouteConfig | undefined;
  if (url === undefined || PUBLIC.test(url) || config?.auth === false) return false;
  return config?.auth ?? (request.method === 'GET' || request.method === 'HEAD' ? 'read' : 'write');
}

function describe(p: Principal): string {
  if (p.kind === 'bootstrap') return 'bootstrap-admin';
  return `${p.username ?? p.userId ?? p.tenant} (${[p.userId, p.credentialId, p.via && `via ${p.via}`].filter(Boolean).join(', ')})`;
}

const UserSchema = Type.Object({
  id: Type.String(),
  username: Type.String(),
  tenant: Type.String(),
  role: Type.Union([Type.Literal('read'), Type.Literal('write'), Type.Literal('admin')]),
  createdAt: Type.String(),
});
const ScopeSchema = Type.Union([Type.Literal('read'), Type.Literal('write'), Type.Literal('admin')]);
const KeySchema = Type.Object({
  id: Type.String(),
  userId: Type.String(),
  tenant: Type.String(),
  name: Type.String(),
  scopes: Type.Array(ScopeSchema),
  createdAt: Type.String(),
  expiresAt: Type.Union([Type.String(), Type.Null()]),
});
const PrincipalSchema = Type.Object({
  kind: Type.String(),
  tenant: Type.String(),
  userId: Type.Optional(Type.String()),
  username: Type.Optional(Type.String()),
  scopes: Type.Array(ScopeSchema),
  credentialId: Type.Optional(Type.String()),
  via: Type.Optional(Type.String()),
});
const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, ErrorResponse]));

const plugin: FastifyPluginAsync<AuthPluginOptions> = async (app, opts) => {
  const { store, authenticator, tokens, audit, limits } = opts;
  const prefix = opts.prefix ?? '/api/v1/auth';

  /** Every auth Redis call is bounded: Redis trouble is a 503 with Retry-After, never a hang. */
  async function bounded<T>(what: string, work: () => Promise<T>): Promise<T> {
    try {
      return await within(work(), opts.timeoutMs);
    } catch (err) {
      if (err instanceof AuthError || (err as { statusCode?: number }).statusCode) throw err;
      const e = new AuthUnavailable(`${what} failed`);
      (e as unknown as { headers: Record<string, string> }).headers = { 'retry-after': '1' };
      throw e;
    }
  }

  /**
   * Addresses locked out of guessing (AUTH_LOGIN_MAX_FAILURES_PER_IP invalid credentials an hour, counted in Redis):
   * remembered in process until the lock ends, so a locked address gets 429 before any credential of it is looked at.
   */
  const lockedOut = new Map<string, number>();

  function refuseLockedOut(request: FastifyRequest, reply: FastifyReply, until: number): never {
    const seconds = Math.max(1, Math.ceil((until - Date.now()) / 1000));
    reply.header('retry-after', String(seconds));
    throw new RateLimited(`Too many invalid credentials from this address: try again in ${seconds} s`);
  }

  async function identify(request: FastifyRequest, reply: FastifyReply): Promise<Principal | undefined> {
    const secret = bearerOf(request);
    if (!secret) return undefined;
    const until = lockedOut.get(request.ip);
    if (until !== undefined) {
      if (until > Date.now()) refuseLockedOut(request, reply, until);
      lockedOut.delete(request.ip);
    }
    // Verified lately in this process: no Redis, no timer (the common case); else looked up within the bound.
    const principal = authenticator.cached(secret) ?? (await bounded('credential check', () => authenticator.authenticate(secret)));
    if (!principal) {
      const verdict = limits ? await limits.credentialFailed(request.ip) : { allowed: true as const };
      if (!verdict.allowed) {
        if (lockedOut.size > 10_000) lockedOut.clear();
        lockedOut.set(request.ip, Date.now() + verdict.retryAfterMs);
        refuseLockedOut(request, reply, Date.now() + verdict.retryAfterMs);
      }
      reply.header('www-authenticate', 'Bearer realm="aicache", error="invalid_token"');
      throw new Unauthorized('Invalid, expired or revoked credential');
    }
    return principal;
  }

  function refuseScope(principal: Principal, needed: Scope, request: FastifyRequest): void {
    if (principal.kind === 'bootstrap' || allows(principal.scopes, needed)) return;
    throw new Forbidden(`This credential may ${principal.scopes.join(', ') || 'nothing'}; ${request.method} ${request.routeOptions.url} needs ${needed}`);
  }

  async function limit(request: FastifyRequest, reply: FastifyReply, principal: Principal): Promise<void> {
    if (!limits || principal.kind === 'anonymous' || principal.kind === 'bootstrap') return;
    const verdict = limits.request(principal);
    if (verdict.allowed) return;
    const seconds = Math.max(1, Math.ceil(verdict.retryAfterMs / 1000));
    reply.header('retry-after', String(seconds));
    throw new RateLimited(`Too many requests for this credential: try again in ${seconds} s`);
  }

  app.decorateRequest('principal', undefined);
  app.decorateRequest('adminAction', false);

  app.addHook('onRequest', async (request, reply) => {
    const needed = neededScope(request);
    if (needed === false) return;
    const principal = await identify(request, reply);
    if (!principal) {
      if (opts.mode === 'off' && needed !== 'admin') {
        request.principal = ANONYMOUS;
        return;
      }
      reply.header('www-authenticate', 'Bearer realm="aicache"');
      throw new Unauthorized('Missing credential: send Authorization: Bearer <API key or session token>');
    }
    refuseScope(principal, needed, request);
    request.principal = principal;
    await limit(request, reply, principal);
  });

  app.addHook('onResponse', async (request, reply) => {
    if (!request.adminAction || reply.statusCode >= 400) return;
    const params = request.params && typeof request.params === 'object' ? JSON.stringify(request.params) : '';
    await api.audit(request, `${request.method} ${request.routeOptions.url}`, params === '{}' ? '' : params, reply.statusCode);
  });

  if (opts.securityScheme) {
    const scheme = opts.securityScheme;
    app.addHook('onRoute', (route: RouteOptions) => {
      const config = route.config as AuthRouteConfig | undefined;
      if (PUBLIC.test(route.url) || config?.auth === false) return;
      // `x-scope`: the least scope a credential needs here (a host's admin-only routes may raise it).
      const methods = ([] as string[]).concat(route.method);
      const declared = (route.schema as Record<string, unknown> | undefined)?.['x-scope'] as Scope | undefined;
      const scope = declared ?? config?.auth ?? (methods.every((m) => m === 'GET' || m === 'HEAD') ? 'read' : 'write');
      // The answers the check itself may give, declared where the route has not declared its own.
      const response = { ...errors(401, 403, 429, 503), ...(route.schema?.response as Record<string, unknown> | undefined) };
      route.schema = Object.assign({}, route.schema, { security: [{ [scheme]: [] }], 'x-scope': scope, response });
    });
  }

  const api: AuthApi = {
    mode: opts.mode,
    store,
    authenticator,
    limits,
    require(scope) {
      return async function requireScope(request, reply) {
        let principal = request.principal;
        if (!principal || principal.kind === 'anonymous') {
          principal = await identify(request, reply);
          if (!principal) {
            reply.header('www-authenticate', 'Bearer realm="aicache"');
            throw new Unauthorized(`Missing credential: send Authorization: Bearer <API key with the ${scope} scope, or CACHE_ADMIN_TOKEN>`);
          }
        }
        refuseScope(principal, scope, request);
        request.principal = principal;
        if (scope === 'admin' && request.method !== 'GET' && request.method !== 'HEAD') request.adminAction = true;
      };
    },
    peerHeaders(request) {
      return bounded('service token', () => serviceTokenHeaders(tokens, request.principal));
    },
    async spendInputs(principal, count) {
      if (!limits || !principal || principal.kind === 'anonymous' || principal.kind === 'bootstrap') return { allowed: true };
      return limits.inputs(principal, count);
    },
    async chargeInputs(request, reply, count) {
      const verdict = await api.spendInputs(request.principal, count);
      if (verdict.allowed) return;
      if (verdict.tooLarge !== undefined) {
        throw new BodyTooLarge(`${count} inputs is more than the ${verdict.tooLarge} allowed per minute (EMBEDDINGS_INPUTS_PER_MINUTE): send fewer at a time`);
      }
      const seconds = Math.max(1, Math.ceil(verdict.retryAfterMs / 1000));
      reply.header('retry-after', String(seconds));
      throw new RateLimited(`Embedding inputs per minute used up for this credential: try again in ${seconds} s`);
    },
    async audit(request, action, target, status = 200) {
      const p = request.principal;
      await audit.record(
        { actor: p ? describe(p) : 'anonymous', tenant: p?.tenant ?? '', action, target, status: String(status), requestId: String(request.id) },
        request.log,
      );
    },
  };
  app.decorate('auth', api);

  async function announce(request: FastifyRequest, revocations: Revocation[]): Promise<void> {
    for (const r of revocations) authenticator.revoke(r);
    await bounded('revocation', () => store.announce(revocations)).catch((err: unknown) => {
      request.log.warn({ err: { message: (err as Error).message } }, 'auth: revocation not announced; other replicas drop the credential within AUTH_CACHE_TTL_MS');
    });
  }

  /** The user a request acts for (a session's or a key's owner); 403 for credentials that are not a user's. */
  async function currentUser(request: FastifyRequest): Promise<User> {
    const p = request.principal;
    if (!p?.userId || p.kind === 'service') throw new Forbidden('This credential does not belong to a user');
    const user = await bounded('user read', () => store.getUser(p.userId!));
    if (!user) throw new Unauthorized('The user of this credential no longer exists');
    return user;
  }

  const isAdmin = (request: FastifyRequest) => request.principal?.kind === 'bootstrap' || allows(request.principal?.scopes ?? [], 'admin');

  await app.register(
    async (scope) => {
      const r = scope.withTypeProvider<TypeBoxTypeProvider>();
      const tags = ['auth'];

      r.post(
        '/login',
        {
          config: { auth: false },
          schema: {
            tags,
            summary: 'Log in: a session token with sliding expiry',
            description: `The session lasts SESSION_TTL_SECONDS (${store.sessionTtlSeconds} s here) after its last use. Repeated failures lock the user and the address out for a while (429 with Retry-After).`,
            body: Type.Object({ username: Type.String({ minLength: 1, maxLength: 128 }), password: Type.String({ minLength: 1, maxLength: 1024 }) }, { additionalProperties: false }),
            response: { 200: Type.Object({ token: Type.String(), tokenType: Type.Literal('Bearer'), expiresIn: Type.Integer(), user: UserSchema }), ...errors(400, 401, 429, 503) },
          },
        },
        async (request, reply) => {
          const { username, password } = request.body;
          if (limits) {
            const locked = await limits.loginCheck(username, request.ip);
            if (!locked.allowed) {
              const seconds = Math.max(1, Math.ceil(locked.retryAfterMs / 1000));
              reply.header('retry-after', String(seconds));
              throw new RateLimited(`Too many failed logins: try again in ${seconds} s`);
            }
          }
          const user = await bounded('login', () => store.checkPassword(username, password));
          if (!user) {
            await limits?.loginFailed(username, request.ip);
            throw new Unauthorized('Wrong username or password');
          }
          await limits?.loginSucceeded(username, request.ip);
          const session = await bounded('session create', () => store.createSession(user));
          return { token: session.token, tokenType: 'Bearer' as const, expiresIn: session.expiresInSeconds, user };
        },
      );

      r.post(
        '/logout',
        { config: { auth: 'read' }, schema: { tags, summary: 'End this session', response: { 204: Type.Null(), ...errors(401, 403, 503) } } },
        async (request, reply) => {
          const p = request.principal!;
          if (p.kind !== 'session') throw new Forbidden('Only a session can log out; revoke an API key with DELETE /api/v1/auth/keys/:keyId');
          const revocation = await bounded('logout', () => store.endSession(authenticator.digestOf(bearerOf(request)!), p.userId!));
          await announce(request, [revocation]);
          return reply.code(204).send(null);
        },
      );

      r.post(
        '/logout-all',
        {
          config: { auth: 'read' },
          schema: {
            tags,
            summary: "End every session of this credential's user, on every device",
            response: { 200: Type.Object({ ended: Type.Integer() }), ...errors(401, 403, 503) },
          },
        },
        async (request) => {
          const user = await currentUser(request);
          const { ended, revocation } = await bounded('logout-all', () => store.endAllSessions(user.id));
          await announce(request, [revocation]);
          return { ended };
        },
      );

      r.get(
        '/me',
        {
          schema: {
            tags,
            summary: 'Who this credential is',
            response: { 200: Type.Object({ principal: PrincipalSchema, user: Type.Union([UserSchema, Type.Null()]), sessionExpiresIn: Type.Union([Type.Integer(), Type.Null()]) }), ...errors(401, 503) },
          },
        },
        async (request) => {
          const p = request.principal!;
          const user = p.userId && p.kind !== 'service' ? await bounded('user read', () => store.getUser(p.userId!)) : null;
          let sessionExpiresIn: number | null = null;
          if (p.kind === 'session') {
            const found = await bounded('session read', () => store.resolve(authenticator.digestOf(bearerOf(request)!), 'session'));
            sessionExpiresIn = found?.kind === 'session' ? found.ttlSeconds : null;
          }
          return { principal: { ...p, scopes: [...p.scopes] }, user, sessionExpiresIn };
        },
      );

      r.post(
        '/users',
        {
          config: { auth: 'admin' },
          schema: {
            tags,
            summary: 'Create a user (admin)',
            description: `Passwords: at least ${MIN_PASSWORD_LENGTH} characters, hashed with scrypt. \`role\` is the most the user's credentials may do.`,
            body: Type.Object(
              {
                username: Type.String({ minLength: 1, maxLength: 128 }),
                password: Type.String({ minLength: MIN_PASSWORD_LENGTH, maxLength: 1024 }),
                tenant: Type.Optional(Type.String({ pattern: TENANT_PATTERN })),
                role: Type.Optional(ScopeSchema),
              },
              { additionalProperties: false },
            ),
            response: { 201: UserSchema, ...errors(400, 401, 403, 409, 503) },
          },
        },
        async (request, reply) => {
          const user = await bounded('user create', () => store.createUser(request.body));
          await api.audit(request, 'user.create', `${user.id} ${user.username} tenant=${user.tenant} role=${user.role}`, 201);
          return reply.code(201).send(user);
        },
      );

      r.get(
        '/users',
        {
          config: { auth: 'admin' },
          schema: {
            tags,
            summary: 'List users (admin)',
            querystring: Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }), offset: Type.Integer({ minimum: 0, default: 0 }) }, { additionalProperties: false }),
            response: { 200: Type.Object({ items: Type.Array(UserSchema), total: Type.Integer() }), ...errors(400, 401, 403, 503) },
          },
        },
        async (request) => bounded('user list', () => store.listUsers(request.query.limit, request.query.offset)),
      );

      r.delete(
        '/users/:userId',
        {
          config: { auth: 'admin' },
          schema: {
            tags,
            summary: 'Delete a user with every key and session (admin)',
            params: Type.Object({ userId: Type.String({ minLength: 1, maxLength: 64 }) }),
            response: { 204: Type.Null(), ...errors(401, 403, 404, 503) },
          },
        },
        async (request, reply) => {
          const revocations = await bounded('user delete', () => store.deleteUser(request.params.userId));
          if (!revocations) throw new NotFound('user', request.params.userId);
          await announce(request, revocations);
          await api.audit(request, 'user.delete', request.params.userId, 204);
          return reply.code(204).send(null);
        },
      );

      r.post(
        '/keys',
        {
          schema: {
            tags,
            summary: 'Create an API key (shown once)',
            description: 'For the user of this credential; an admin may name another user with `userId`. Scopes cannot exceed the user\'s role.',
            body: Type.Object(
              {
                name: Type.String({ minLength: 1, maxLength: 100 }),
                scopes: Type.Array(ScopeSchema, { minItems: 1, maxItems: 3, uniqueItems: true }),
                expiresInSeconds: Type.Optional(Type.Integer({ minimum: 60, maximum: 366 * 86400 })),
                userId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
              },
              { additionalProperties: false },
            ),
            response: { 201: Type.Object({ key: Type.String({ description: 'The secret: shown here once, stored only as its SHA-256.' }), record: KeySchema }), ...errors(400, 401, 403, 404, 503) },
          },
        },
        async (request, reply) => {
          const { userId, ...input } = request.body;
          let user: User;
          if (userId !== undefined && userId !== request.principal?.userId) {
            if (!isAdmin(request)) throw new Forbidden('Only an admin may create a key for another user');
            const found = await bounded('user read', () => store.getUser(userId));
            if (!found) throw new NotFound('user', userId);
            user = found;
          } else {
            user = await currentUser(request);
          }
          // A key never gives more than the credential that made it: a write key cannot mint an admin key.
          if (request.principal?.kind !== 'bootstrap') {
            for (const s of input.scopes) refuseScope(request.principal!, s, request);
          }
          const created = await bounded('key create', () => store.createKey(user, input));
          await api.audit(request, 'key.create', `${created.record.id} user=${user.id} scopes=${created.record.scopes.join(',')}`, 201);
          return reply.code(201).send(created);
        },
      );

      r.get(
        '/keys',
        {
          schema: {
            tags,
            summary: "List API keys (the credential's user; an admin may name another with ?userId=)",
            querystring: Type.Object({ userId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })) }, { additionalProperties: false }),
            response: { 200: Type.Object({ items: Type.Array(KeySchema) }), ...errors(400, 401, 403, 503) },
          },
        },
        async (request) => {
          const wanted = request.query.userId;
          if (wanted !== undefined && wanted !== request.principal?.userId && !isAdmin(request)) throw new Forbidden("Only an admin may list another user's keys");
          const userId = wanted ?? (await currentUser(request)).id;
          return { items: await bounded('key list', () => store.listKeys(userId)) };
        },
      );

      r.delete(
        '/keys/:keyId',
        {
          schema: {
            tags,
            summary: 'Revoke an API key (own keys; an admin: any)',
            description: 'Stops working on every replica of every service at once (pub/sub), at worst after AUTH_CACHE_TTL_MS.',
            params: Type.Object({ keyId: Type.String({ minLength: 1, maxLength: 64 }) }),
            response: { 204: Type.Null(), ...errors(401, 403, 404, 503) },
          },
        },
        async (request, reply) => {
          const owner = isAdmin(request) ? undefined : (await currentUser(request)).id;
          const revoked = await bounded('key revoke', () => store.revokeKey(request.params.keyId, owner));
          // Another user's key answers like a key that does not exist.
          if (!revoked) throw new NotFound('key', request.params.keyId);
          await announce(request, [revoked.revocation]);
          await api.audit(request, 'key.revoke', `${revoked.record.id} user=${revoked.record.userId}`, 204);
          return reply.code(204).send(null);
        },
      );

      r.get(
        '/audit',
        {
          config: { auth: 'admin' },
          schema: {
            tags,
            summary: 'Admin actions, newest first (admin)',
            description: 'Cache clears and invalidations, user and key changes, from every service; the stream keeps the last AUDIT_MAX_ENTRIES.',
            querystring: Type.Object(
              { count: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }), before: Type.Optional(Type.String({ pattern: '^\\d+-\\d+$' })) },
              { additionalProperties: false },
            ),
            response: {
              200: Type.Object({
                items: Type.Array(
                  Type.Object({
                    id: Type.String(),
                    at: Type.String(),
                    service: Type.String(),
                    actor: Type.String(),
                    tenant: Type.String(),
                    action: Type.String(),
                    target: Type.String(),
                    status: Type.String(),
                    requestId: Type.String(),
                  }),
                ),
              }),
              ...errors(400, 401, 403, 503),
            },
          },
        },
        async (request) => ({ items: await bounded('audit read', () => audit.read(request.query.count, request.query.before)) }),
      );
    },
    { prefix },
  );
};

/** Authentication on every route but /health, /ready, /metrics and /docs, and the /api/v1/auth routes. */
export const authPlugin = fp(plugin, { name: '@aicache/auth', fastify: '5.x' });

export type { FastifyInstance };
