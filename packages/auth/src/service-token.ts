import { jwtVerify, SignJWT } from 'jose';
import { SCOPES, TENANT_RE, type Principal, type Scope } from './principal.js';

/** Audience of every service token: only the stack's own services accept them. */
const AUDIENCE = 'aicache-services';
/** Lifetime of a service token. A caller reuses one until a third of it is left. */
export const SERVICE_TOKEN_TTL_SECONDS = 60;

/**
 * Short-lived HS256 tokens (JWT, signed and checked with `jose`) that a service sends to a peer when it calls it on a
 * user's behalf: they name the tenant, user and scopes of the request being served and the calling service. The callee
 * checks the signature and expiry without a Redis round trip, and the user's own credential never leaves the service it
 * was sent to. The signing secret is SERVICE_TOKEN_SECRET, or else one secret generated once and kept on the state
 * Redis (SET NX), so every replica of every service shares it with nothing to configure.
 */
export class ServiceTokens {
  private secret: Promise<Uint8Array> | undefined;
  private readonly minted = new Map<string, { token: string; renewAt: number }>();

  constructor(
    private readonly opts: {
      service: string;
      /** The secret every replica shares when SERVICE_TOKEN_SECRET is not set (AuthStore.sharedSecret). */
      sharedSecret: () => Promise<string>;
      secret?: string | undefined;
    },
  ) {
    if (opts.secret) this.secret = Promise.resolve(new TextEncoder().encode(opts.secret));
  }

  private key(): Promise<Uint8Array> {
    this.secret ??= this.opts
      .sharedSecret()
      .then((stored) => new TextEncoder().encode(stored))
      .catch((err: unknown) => {
        this.secret = undefined; // try again on the next call
        throw err;
      });
    return this.secret;
  }

  /** A token for calling a peer on behalf of `principal` (reused while it has more than a third of its life left). */
  async mint(principal: Principal): Promise<string> {
    const id = `${principal.kind}|${principal.credentialId ?? ''}|${principal.userId ?? ''}|${principal.tenant}|${principal.scopes.join(',')}`;
    const now = Date.now();
    const cached = this.minted.get(id);
    if (cached && cached.renewAt > now) return cached.token;
    const token = await new SignJWT({ tenant: principal.tenant, scopes: principal.scopes, ...(principal.username ? { name: principal.username } : {}) })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(this.opts.service)
      .setAudience(AUDIENCE)
      .setSubject(principal.userId ?? principal.tenant)
      .setIssuedAt()
      .setExpirationTime(`${SERVICE_TOKEN_TTL_SECONDS}s`)
      .sign(await this.key());
    if (this.minted.size > 10_000) this.minted.clear();
    this.minted.set(id, { token, renewAt: now + (SERVICE_TOKEN_TTL_SECONDS * 1000 * 2) / 3 });
    return token;
  }

  /** The principal a peer's token acts for, with its expiry, or null for a bad signature, audience or expiry. */
  async verify(token: string): Promise<{ principal: Principal; expiresAtMs: number } | null> {
    try {
      const { payload } = await jwtVerify(token, await this.key(), { audience: AUDIENCE, algorithms: ['HS256'], requiredClaims: ['exp', 'iss', 'sub'] });
      const tenant = payload.tenant;
      const scopes = payload.scopes;
      if (typeof tenant !== 'string' || !TENANT_RE.test(tenant) || !Array.isArray(scopes)) return null;
      const principal: Principal = {
        kind: 'service',
        tenant,
        scopes: scopes.filter((s): s is Scope => (SCOPES as unknown[]).includes(s)),
        via: String(payload.iss),
        ...(payload.sub !== tenant ? { userId: String(payload.sub) } : {}),
        ...(typeof payload.name === 'string' ? { username: payload.name } : {}),
      };
      return { principal, expiresAtMs: (payload.exp ?? 0) * 1000 };
    } catch (err) {
      if ((err as { code?: string }).code?.startsWith('ERR_J')) return null;
      throw err;
    }
  }
}

/**
 * Headers for a call to a peer service on behalf of `principal`: a signed service token naming its tenant, user and
 * scopes (none for the anonymous principal of AUTH_MODE=off, which the peer, also off, accepts as it is).
 */
export async function serviceTokenHeaders(tokens: ServiceTokens, principal: Principal | undefined): Promise<Record<string, string>> {
  if (!principal || principal.kind === 'anonymous' || principal.kind === 'bootstrap') return {};
  return { authorization: `Bearer ${await tokens.mint(principal)}` };
}
