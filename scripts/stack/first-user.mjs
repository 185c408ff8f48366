// Step 6 of npm start: a first user and API key for the walk-through, made through the auth routes with the admin
// token and kept between runs (.data/api-key and .data/demo-password, mode 0600). A key that no longer works (its
// Redis was emptied) is replaced.
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rel, say } from './log.mjs';
import { dataDir } from './paths.mjs';

export const DEMO_USER = 'demo';

async function call(base, token, method, path, body) {
  const res = await fetch(`${base}/api/v1/auth${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

function keep(file, value) {
  writeFileSync(file, `${value}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
}

/** `base`: any service's URL (they share the auth records). Returns how a shell command should say the key. */
export async function firstUser(base, adminToken) {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const keyFile = join(dataDir, 'api-key');
  const passwordFile = join(dataDir, 'demo-password');
  const shown = { key: `$(cat ${rel(keyFile)})`, where: rel(keyFile), passwordWhere: rel(passwordFile), user: DEMO_USER };
  if (existsSync(keyFile)) {
    const key = readFileSync(keyFile, 'utf8').trim();
    if (key && (await call(base, key, 'GET', '/me')).status === 200) return shown;
  }
  let user;
  const password = randomBytes(18).toString('base64url');
  const created = await call(base, adminToken, 'POST', '/users', { username: DEMO_USER, password, tenant: 'default', role: 'write' });
  if (created.status === 201) {
    user = created.json;
    keep(passwordFile, password);
  } else if (created.status === 409) {
    const list = await call(base, adminToken, 'GET', '/users?limit=500');
    user = list.json?.items?.find((u) => u.username === DEMO_USER);
  }
  if (!user) throw new Error(`could not make the walk-through user (POST /api/v1/auth/users answered ${created.status})`);
  const key = await call(base, adminToken, 'POST', '/keys', { name: 'walk-through', scopes: ['write'], userId: user.id });
  if (key.status !== 201) throw new Error(`could not make the walk-through API key (POST /api/v1/auth/keys answered ${key.status})`);
  keep(keyFile, key.json.key);
  say(`made user '${DEMO_USER}' (tenant default) and an API key for it: ${rel(keyFile)}${created.status === 201 ? `, password in ${rel(passwordFile)}` : ''} (mode 0600)`);
  return shown;
}
