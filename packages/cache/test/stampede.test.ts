import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getTestRedis, uniqueName, type TestRedis } from '@aicache/test-redis';
import type { Redis } from 'ioredis';
import { rawClient } from './helpers.js';

const run = promisify(execFile);
const worker = fileURLToPath(new URL('./fixtures/stampede-worker.mjs', import.meta.url));
const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));

describe('stampede protection across replicas', () => {
  let r: TestRedis;
  let raw: Redis;
  const DB = 9;
  beforeAll(async () => {
    if (!existsSync(dist)) throw new Error(`${dist} is missing: run \`pnpm --filter @aicache/cache build\` first (turbo's test task does)`);
    r = await getTestRedis();
    raw = rawClient(r, DB);
  });
  afterAll(async () => {
    raw.disconnect();
    await r.stop();
  });

  it('4 processes x 250 concurrent getOrSet on one cold key run the loader once in total', async () => {
    const service = uniqueName('herd');
    const counterKey = `${service}-loader-calls`;
    const startAt = String(Date.now() + 2500);
    const outs = await Promise.all(
      Array.from({ length: 4 }, () => run(process.execPath, [worker, r.url, String(DB), service, 'cold', counterKey, startAt], { timeout: 30_000 })),
    );
    expect(await raw.get(counterKey)).toBe('1');
    const distinct = new Set(outs.flatMap((o) => (JSON.parse(o.stdout) as { distinct: string[] }).distinct));
    expect(distinct.size).toBe(1);
    expect(await raw.exists(`${service}:__lease:search_results:cold`)).toBe(0);
    await raw.del(counterKey, `${service}:search_results:cold`, `${service}:__stats`);
  });
});
