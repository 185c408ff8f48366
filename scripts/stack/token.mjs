// Step 4 of npm start: the cache admin token, from CACHE_ADMIN_TOKEN or a file kept between runs.
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rel, say } from './log.mjs';
import { dataDir } from './paths.mjs';

/** The token, how a shell command should say it, and where it came from (never the token itself). */
export function adminToken() {
  if (process.env.CACHE_ADMIN_TOKEN) return { token: process.env.CACHE_ADMIN_TOKEN, shell: '$CACHE_ADMIN_TOKEN', where: 'CACHE_ADMIN_TOKEN' };
  const file = join(dataDir, 'admin-token');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  let token = existsSync(file) ? readFileSync(file, 'utf8').trim() : '';
  if (!token) {
    token = randomBytes(32).toString('hex');
    writeFileSync(file, `${token}\n`, { mode: 0o600 });
    say(`made a cache admin token: ${rel(file)} (mode 0600)`);
  }
  chmodSync(file, 0o600);
  return { token, shell: `$(cat ${rel(file)})`, where: rel(file) };
}
