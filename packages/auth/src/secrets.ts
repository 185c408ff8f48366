import { createHash, hash, randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/**
 * Passwords are hashed with scrypt (memory-hard, in node:crypto): N=2^15, r=8, p=1 takes 32 MiB and ~60-100 ms per
 * hash here, which is what makes an offline guess expensive. The stored form names its parameters so they can rise
 * later without invalidating existing hashes.
 */
export const SCRYPT = { N: 32768, r: 8, p: 1, keylen: 32 } as const;
const SCRYPT_MAXMEM = 64 * 1024 * 1024;

function scrypt(password: string, salt: Buffer, keylen: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCb(password, salt, keylen, options, (err, key) => (err ? reject(err) : resolve(key))));
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, SCRYPT.keylen, { N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p, maxmem: SCRYPT_MAXMEM });
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

/** A hash of a password nobody has: verifying an unknown user costs the same as verifying a known one. */
let decoy: Promise<string> | undefined;

/** Constant-time compare of the derived key; false for a malformed hash. `stored` undefined: burns the same time. */
export async function verifyPassword(password: string, stored: string | undefined): Promise<boolean> {
  const target = stored ?? (await (decoy ??= hashPassword(randomBytes(16).toString('hex'))));
  const [scheme, n, r, p, salt, key] = target.split('$');
  if (scheme !== 'scrypt' || !n || !r || !p || !salt || !key) return false;
  const expected = Buffer.from(key, 'base64url');
  const derived = await scrypt(password, Buffer.from(salt, 'base64url'), expected.length, { N: Number(n), r: Number(r), p: Number(p), maxmem: SCRYPT_MAXMEM });
  return timingSafeEqual(derived, expected) && stored !== undefined;
}

/** Prefixes that say what a bearer secret is without a lookup (and let secret scanners recognise them). */
export const KEY_PREFIX = 'aik_';
export const SESSION_PREFIX = 'ses_';

/** 32 random bytes: API keys and session tokens are unguessable, so a fast digest is enough to store them. */
export function newSecret(prefix: string): string {
  return prefix + randomBytes(32).toString('base64url');
}

export function newId(prefix: string): string {
  return prefix + randomBytes(9).toString('base64url');
}

/**
 * The stored form of a bearer secret: its SHA-256. The secret itself is shown once and kept nowhere. One-shot
 * `crypto.hash` (about 3x cheaper than a Hash object): it runs on every authenticated request.
 */
export function digestOf(secret: string): string {
  return hash('sha256', secret, 'base64url');
}

/** Constant-time equality of two strings of any length (compares their digests). */
export function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}
