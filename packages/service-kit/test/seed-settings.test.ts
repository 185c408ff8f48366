import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getTestRedis, uniqueName, type TestRedis } from '@aicache/test-redis';

const FIXTURE = fileURLToPath(new URL('./fixtures/boot.mjs', import.meta.url));

interface Boot {
  code: number | null;
  lines: Array<Record<string, unknown>>;
  stderr: string;
}

/**
 * Boots the fixture service in a directory holding `dotenv` as its .env, waits until it listens (or exits), stops
 * it with SIGTERM and answers its JSON log lines.
 */
function boot(dotenv: string, env: Record<string, string>): Promise<Boot> {
  const cwd = mkdtempSync(join(tmpdir(), 'kit-boot-'));
  writeFileSync(join(cwd, '.env'), dotenv);
  const child = spawn(process.execPath, [FIXTURE], {
    cwd,
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'development', LOG_LEVEL: 'info', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let stopping = false;
  const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (!stopping && stdout.includes('"service listening"')) {
      stopping = true;
      child.kill('SIGTERM');
    }
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => {
    child.on('exit', (code) => {
      clearTimeout(killer);
      const lines = stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      resolve({ code, lines, stderr });
    });
  });
}

let redis: TestRedis;
beforeAll(async () => {
  redis = await getTestRedis();
});
afterAll(async () => {
  await redis?.stop();
});

const SEED_ENV = [
  '# .env of the original stack',
  'REDIS_MAX_CONNECTIONS=50',
  'REDIS_SOCKET_TIMEOUT=5',
  'REDIS_SOCKET_CONNECT_TIMEOUT=5',
  'REDIS_RETRY_ON_TIMEOUT=True',
  'REDIS_DB=0',
  '',
].join('\n');

describe('a .env carried over from the original stack', () => {
  it('boots, and logs one warning for each setting that has no counterpart, naming what to set instead', async () => {
    const { code, lines, stderr } = await boot(SEED_ENV, { REDIS_URL: redis.url, SERVICE_NAME: uniqueName('boot') });
    expect(stderr).toBe('');
    expect(lines.some((l) => l.msg === 'service listening')).toBe(true);
    expect(code).toBe(0);
    const warnings = lines.filter((l) => l.level === 40 && typeof l.variable === 'string');
    expect(warnings.map((w) => w.variable)).toEqual(['REDIS_MAX_CONNECTIONS', 'REDIS_RETRY_ON_TIMEOUT', 'REDIS_DB']);
    const byVar = Object.fromEntries(warnings.map((w) => [w.variable, String(w.msg)]));
    expect(byVar.REDIS_DB).toMatch(/set REDIS_DB_BOOT_TEST instead/);
    expect(byVar.REDIS_RETRY_ON_TIMEOUT).toMatch(/CACHE_COMMAND_TIMEOUT_MS/);
    expect(byVar.REDIS_MAX_CONNECTIONS).toMatch(/one connection/);
    // The two that map onto ioredis options are honored, so nothing is said about them.
    expect(lines.some((l) => JSON.stringify(l).includes('REDIS_SOCKET'))).toBe(false);
  });

  it('says nothing when none of them is set', async () => {
    const { code, lines } = await boot('', { REDIS_URL: redis.url, SERVICE_NAME: uniqueName('boot') });
    expect(code).toBe(0);
    expect(lines.filter((l) => l.level === 40)).toEqual([]);
  });

  it.each([
    ['CACHE_TTL_FILES', '0x10'],
    ['CACHE_TTL_FILES', '1e3'],
    ['PORT', '1e4'],
    ['REDIS_SOCKET_TIMEOUT', 'five'],
  ])('refuses to boot with %s=%s, naming the variable', async (variable, value) => {
    const { code, lines, stderr } = await boot('', { REDIS_URL: redis.url, SERVICE_NAME: uniqueName('boot'), [variable]: value });
    expect(code).not.toBe(0);
    expect(lines.some((l) => l.msg === 'service listening')).toBe(false);
    expect(stderr).toContain(variable);
    expect(stderr).toContain(JSON.stringify(value));
  });
});
