import { randomBytes } from 'node:crypto';
import { isCluster, scanEveryMaster, type RedisClient } from '@aicache/cache';
import { DEFAULT_TENANT, SCOPES, TENANT_RE, type Principal, type Scope } from './principal.js';
import { digestOf, hashPassword, KEY_PREFIX, newId, newSecret, SESSION_PREFIX, verifyPassword } from './secrets.js';

export interface User {
  id: string;
  username: string;
  tenant: string;
  /** The most a credential of this user may do: keys are scoped within it, sessions get it. */
  role: Scope;
  createdAt: string;
}

export interface ApiKeyRecord {
  id: string;
  userId: string;
  tenant: string;
  name: string;
  scopes: Scope[];
  createdAt: string;
  /** ISO time after which the key no longer works; null = until revoked. */
  expiresAt: string | null;
}

export interface SessionRecord {
  id: string;
  userId: string;
  username: string;
  tenant: string;
  scopes: Scope[];
  createdAt: string;
}

/** What a bearer secret resolved to. */
export type Credential = { kind: 'key'; key: ApiKeyRecord; username: string } | { kind: 'session'; session: SessionRecord; ttlSeconds: number };

/** A revocation every replica of every service hears (pub/sub) and drops from its credential cache. */
export type Revocation = { digest: string } | { userId: string };

export class AuthError extends Error {
  constructor(
    readonly statusCode: 400 | 403 | 404 | 409,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export const USERNAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9._@-]{0,127}$/;
export const MIN_PASSWORD_LENGTH = 12;

/**
 * Users, API keys and sessions on the state Redis (noeviction, AOF), shared by every replica of every service.
 * Every key carries one prefix (with a hash tag on a Cluster, so a user's records can be written in one MULTI):
 *   user:<id> (hash), username:<name> -> id, users (zset by creation), user:<id>:keys (set of key ids),
 *   user:<id>:sessions (set of session digests), key:<sha256> (hash; PEXPIREAT at its expiry), keyid:<id> -> sha256,
 *   session:<sha256> (hash; sliding TTL).
 * Secrets are stored only as their SHA-256; passwords only as scrypt hashes.
 */
export class AuthStore {
  readonly prefix: string;
  readonly channel: string;

  constructor(
    readonly redis: RedisClient,
    opts: { sessionTtlSeconds: number },
  ) {
    this.prefix = isCluster(redis) ? 'auth:{auth}:' : 'auth:';
    this.channel = `${this.prefix}revoked`;
    this.sessionTtlSeconds = opts.sessionTtlSeconds;
  }

  readonly sessionTtlSeconds: number;

  private k = {
    user: (id: string) => `${this.prefix}user:${id}`,
    username: (name: string) => `${this.prefix}username:${name.toLowerCase()}`,
    users: () => `${this.prefix}users`,
    userKeys: (id: string) => `${this.prefix}user:${id}:keys`,
    userSessions: (id: string) => `${this.prefix}user:${id}:sessions`,
    key: (digest: string) => `${this.prefix}key:${digest}`,
    keyId: (id: string) => `${this.prefix}keyid:${id}`,
    session: (digest: string) => `${this.prefix}session:${digest}`,
  };

  async createUser(input: { username: string; password: string; tenant?: string; role?: Scope }): Promise<User> {
    const tenant = input.tenant ?? DEFAULT_TENANT;
    if (!USERNAME_RE.test(input.username)) throw new AuthError(400, 'INVALID_USERNAME', 'username: 1-128 letters, digits or . _ @ -, starting with a letter or digit');
    if (input.password.length < MIN_PASSWORD_LENGTH) throw new AuthError(400, 'WEAK_PASSWORD', `password: at least ${MIN_PASSWORD_LENGTH} characters`);
    if (!TENANT_RE.test(tenant)) throw new AuthError(400, 'INVALID_TENANT', 'tenant: 1-63 of a-z 0-9 _ -, starting with a letter or digit');
    const user: User = { id: newId('usr_'), username: input.username, tenant, role: input.role ?? 'write', createdAt: new Date().toISOString() };
    const password = await hashPassword(input.password);
    // SET NX claims the name first, so two admins creating the same user at once get one user and one 409.
    const claimed = await this.redis.set(this.k.username(user.username), user.id, 'NX');
    if (claimed !== 'OK') throw new AuthError(409, 'USER_EXISTS', `a user named ${user.username} exists`);
    await this.redis
      .multi()
      .hset(this.k.user(user.id), { ...user, password })
      .zadd(this.k.users(), Date.parse(user.createdAt), user.id)
      .exec();
    return user;
  }

  async getUser(id: string): Promise<User | null> {
    return userOf(await this.redis.hgetall(this.k.user(id)));
  }

  async listUsers(limit: number, offset: number): Promise<{ items: User[]; total: number }> {
    const [ids, total] = await Promise.all([this.redis.zrange(this.k.users(), String(offset), String(offset + limit - 1)), this.redis.zcard(this.k.users())]);
    const users = await Promise.all(ids.map((id) => this.getUser(id)));
    return { items: users.filter((u): u is User => u !== null), total };
  }

  /**
   * The user whose password this is, or null. Costs one scrypt whether or not the user exists, so a wrong username
   * and a wrong password take the same time.
   */
  async checkPassword(username: string, password: string): Promise<User | null> {
    const id = await this.redis.get(this.k.username(username));
    const raw = id ? await this.redis.hgetall(this.k.user(id)) : {};
    const ok = await verifyPassword(password, raw.password);
    return ok ? userOf(raw) : null;
  }

  /** Deletes the user with every key and session; answers the revocations to announce, or null if there was none. */
  async deleteUser(id: string): Promise<Revocation[] | null> {
    const user = await this.getUser(id);
    if (!user) return null;
    const [keyIds, sessions] = await Promise.all([this.redis.smembers(this.k.userKeys(id)), this.redis.smembers(this.k.userSessions(id))]);
    const keyDigests = keyIds.length ? (await this.redis.mget(keyIds.map(this.k.keyId))).filter((d): d is string => !!d) : [];
    await this.redis
      .multi()
      .del(
        this.k.user(id),
        this.k.userKeys(id),
        this.k.userSessions(id),
        ...keyIds.map(this.k.keyId),
        ...keyDigests.map(this.k.key),
        ...sessions.map(this.k.session),
      )
      .del(this.k.username(user.username))
      .zrem(this.k.users(), id)
      .exec();
    return [{ userId: id }];
  }

  /** A new API key; the secret is in the answer and nowhere else. */
  async createKey(user: User, input: { name: string; scopes: Scope[]; expiresInSeconds?: number }): Promise<{ key: string; record: ApiKeyRecord }> {
    for (const scope of input.scopes) {
      if (!SCOPES.includes(scope)) throw new AuthError(400, 'INVALID_SCOPE', `unknown scope ${scope}`);
      if (SCOPES.indexOf(scope) > SCOPES.indexOf(user.role)) {
        throw new AuthError(403, 'SCOPE_NOT_ALLOWED', `scope ${scope} is above what user ${user.username} may do (${user.role})`);
      }
    }
    const secret = newSecret(KEY_PREFIX);
    const digest = digestOf(secret);
    const now = Date.now();
    const record: ApiKeyRecord = {
      id: newId('key_'),
      userId: user.id,
      tenant: user.tenant,
      name: input.name,
      scopes: [...new Set(input.scopes)],
      createdAt: new Date(now).toISOString(),
      expiresAt: input.expiresInSeconds ? new Date(now + input.expiresInSeconds * 1000).toISOString() : null,
    };
    const tx = this.redis
      .multi()
      .hset(this.k.key(digest), { ...record, scopes: record.scopes.join(','), expiresAt: record.expiresAt ?? '', username: user.username })
      .set(this.k.keyId(record.id), digest)
      .sadd(this.k.userKeys(user.id), record.id);
    if (record.expiresAt) tx.pexpireat(this.k.key(digest), Date.parse(record.expiresAt)).pexpireat(this.k.keyId(record.id), Date.parse(record.expiresAt));
    await tx.exec();
    return { key: secret, record };
  }

  async listKeys(userId: string): Promise<ApiKeyRecord[]> {
    const ids = await this.redis.smembers(this.k.userKeys(userId));
    if (!ids.length) return [];
    const digests = await this.redis.mget(ids.map(this.k.keyId));
    const records = await Promise.all(digests.map(async (d) => (d ? keyOf(await this.redis.hgetall(this.k.key(d))) : null)));
    const live = records.filter((r): r is ApiKeyRecord => r !== null);
    // Expired keys vanish by their TTL; their ids are dropped from the user's set here.
    const gone = ids.filter((id) => !live.some((r) => r.id === id));
    if (gone.length) await this.redis.srem(this.k.userKeys(userId), ...gone);
    return live.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /** Revokes a key of this user (any user's when userId is undefined); the revocation to announce, or null. */
  async revokeKey(keyId: string, userId?: string): Promise<{ record: ApiKeyRecord; revocation: Revocation } | null> {
    const digest = await this.redis.get(this.k.keyId(keyId));
    if (!digest) return null;
    const record = keyOf(await this.redis.hgetall(this.k.key(digest)));
    if (!record || (userId !== undefined && record.userId !== userId)) return null;
    await this.redis.multi().del(this.k.key(digest), this.k.keyId(keyId)).srem(this.k.userKeys(record.userId), keyId).exec();
    return { record, revocation: { digest } };
  }

  async createSession(user: User): Promise<{ token: string; record: SessionRecord; expiresInSeconds: number }> {
    const token = newSecret(SESSION_PREFIX);
    const digest = digestOf(token);
    const record: SessionRecord = { id: newId('ses_'), userId: user.id, username: user.username, tenant: user.tenant, scopes: [user.role], createdAt: new Date().toISOString() };
    await this.redis
      .multi()
      .hset(this.k.session(digest), { ...record, scopes: record.scopes.join(',') })
      .expire(this.k.session(digest), this.sessionTtlSeconds)
      .sadd(this.k.userSessions(user.id), digest)
      .exec();
    return { token, record, expiresInSeconds: this.sessionTtlSeconds };
  }

  /** What a bearer secret is, or null (unknown, revoked or expired). */
  async resolve(digest: string, kind: 'key' | 'session'): Promise<Credential | null> {
    if (kind === 'key') {
      const raw = await this.redis.hgetall(this.k.key(digest));
      const key = keyOf(raw);
      if (!key || (key.expiresAt && Date.parse(key.expiresAt) <= Date.now())) return null;
      return { kind: 'key', key, username: raw.username ?? '' };
    }
    const [[, raw], [, ttl]] = (await this.redis.multi().hgetall(this.k.session(digest)).ttl(this.k.session(digest)).exec()) as [[null, Record<string, string>], [null, number]];
    const session = sessionOf(raw);
    return session ? { kind: 'session', session, ttlSeconds: ttl } : null;
  }

  /**
   * Whether what a principal was made from still stands, for work done later in its name (a background job): its API
   * key not revoked nor expired, its user not removed. A session or service token is judged by its user (a job
   * started in a session outlives a logout, not the user's removal). The bootstrap and anonymous principals stand.
   */
  async principalLive(p: Principal): Promise<boolean> {
    const tx = this.redis.multi();
    if (p.userId) tx.exists(this.k.user(p.userId));
    if (p.kind === 'key' && p.credentialId) tx.exists(this.k.keyId(p.credentialId));
    const replies = (await tx.exec()) ?? [];
    for (const [err, n] of replies) {
      if (err) throw err;
      if (Number(n) === 0) return false;
    }
    return true;
  }

  /** Pushes a session's expiry out to a full SESSION_TTL_SECONDS from now (sliding expiry). */
  async touchSession(digest: string): Promise<void> {
    await this.redis.expire(this.k.session(digest), this.sessionTtlSeconds, 'XX' as never);
  }

  async endSession(digest: string, userId: string): Promise<Revocation> {
    await this.redis.multi().del(this.k.session(digest)).srem(this.k.userSessions(userId), digest).exec();
    return { digest };
  }

  /** Ends every session of the user; answers how many were live. */
  async endAllSessions(userId: string): Promise<{ ended: number; revocation: Revocation }> {
    const digests = await this.redis.smembers(this.k.userSessions(userId));
    const tx = this.redis.multi().del(this.k.userSessions(userId));
    if (digests.length) tx.del(...digests.map(this.k.session));
    const results = (await tx.exec()) ?? [];
    const ended = digests.length ? Number(results[1]?.[1] ?? 0) : 0;
    return { ended, revocation: { userId } };
  }

  /**
   * Drops what expiry leaves behind in users' sets: session digests whose session timed out (sliding TTL, never
   * removed from user:<id>:sessions) and key ids whose key expired (listKeys drops them only when the user lists).
   * Bounded: at most `maxKeys` sets per run, members read by SSCAN in pages of `batch`; `complete` is false when a
   * run stopped at the bound.
   */
  async sweepOrphans(opts: { maxKeys?: number; batch?: number } = {}): Promise<{ userSets: number; sessionRefs: number; keyRefs: number; complete: boolean }> {
    const maxKeys = opts.maxKeys ?? 10_000;
    const batch = opts.batch ?? 200;
    const out = { userSets: 0, sessionRefs: 0, keyRefs: 0, complete: true };
    const sweepSet = async (set: string, target: (member: string) => string): Promise<number> => {
      let removed = 0;
      let cursor = '0';
      do {
        const [next, members] = await this.redis.sscan(set, cursor, 'COUNT', batch);
        cursor = next;
        if (members.length === 0) continue;
        const tx = this.redis.pipeline();
        for (const m of members) tx.exists(target(m));
        const live = ((await tx.exec()) ?? []).map(([err, n]) => err !== null || Number(n) > 0);
        const gone = members.filter((_, i) => !live[i]);
        if (gone.length > 0) removed += await this.redis.srem(set, ...gone);
      } while (cursor !== '0');
      return removed;
    };
    for await (const key of scanEveryMaster(this.redis, `${this.prefix}user:*`, batch)) {
      const isSessions = key.endsWith(':sessions');
      if (!isSessions && !key.endsWith(':keys')) continue;
      if (out.userSets >= maxKeys) {
        out.complete = false;
        break;
      }
      out.userSets++;
      // Both are written in the same MULTI as the set's member, so a member without its record is past its expiry.
      if (isSessions) out.sessionRefs += await sweepSet(key, this.k.session);
      else out.keyRefs += await sweepSet(key, this.k.keyId);
    }
    return out;
  }

  /**
   * A random secret of this name, made once (SET NX) and shared by every replica of every service through the state
   * Redis: signing keys that must agree across replicas without anything to configure.
   */
  async sharedSecret(name: string): Promise<string> {
    const key = `${this.prefix}secret:${name}`;
    await this.redis.set(key, randomBytes(32).toString('base64url'), 'NX');
    const value = await this.redis.get(key);
    if (!value) throw new Error(`shared secret ${name} missing on the state Redis`);
    return value;
  }

  async announce(revocations: Revocation[]): Promise<void> {
    for (const r of revocations) await this.redis.publish(this.channel, JSON.stringify(r));
  }
}

function scopesOf(value: string | undefined): Scope[] {
  return (value ?? '').split(',').filter((s): s is Scope => (SCOPES as string[]).includes(s));
}

function userOf(raw: Record<string, string>): User | null {
  if (!raw.id || !raw.username || !raw.tenant) return null;
  return { id: raw.id, username: raw.username, tenant: raw.tenant, role: (scopesOf(raw.role)[0] ?? 'read'), createdAt: raw.createdAt ?? '' };
}

function keyOf(raw: Record<string, string>): ApiKeyRecord | null {
  if (!raw.id || !raw.userId || !raw.tenant) return null;
  return { id: raw.id, userId: raw.userId, tenant: raw.tenant, name: raw.name ?? '', scopes: scopesOf(raw.scopes), createdAt: raw.createdAt ?? '', expiresAt: raw.expiresAt || null };
}

function sessionOf(raw: Record<string, string>): SessionRecord | null {
  if (!raw.id || !raw.userId || !raw.tenant) return null;
  return { id: raw.id, userId: raw.userId, username: raw.username ?? '', tenant: raw.tenant, scopes: scopesOf(raw.scopes), createdAt: raw.createdAt ?? '' };
}
