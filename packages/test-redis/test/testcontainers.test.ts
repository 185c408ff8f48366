import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { OWNER_LABEL, REDIS_IMAGE, dockerMayAnswer, getTestRedis, removeOrphanedContainers, startRedisContainer, type TestRedis } from '../src/index.js';

/** Why the testcontainers path cannot run here, or undefined when it can. */
async function unavailable(): Promise<string | undefined> {
  if (!dockerMayAnswer()) return 'no Docker engine socket';
  try {
    const { getContainerRuntimeClient, ImageName } = await import('testcontainers');
    const client = await getContainerRuntimeClient();
    if (!(await client.image.exists(ImageName.fromString(REDIS_IMAGE)))) return `image ${REDIS_IMAGE} is not present (infra/docker/build-base-images.sh builds one)`;
    return undefined;
  } catch (err) {
    return `no Docker engine answers (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`;
  }
}

async function containerIds(): Promise<{ ours: string[]; reapers: number }> {
  const { getContainerRuntimeClient } = await import('testcontainers');
  const list = await (await getContainerRuntimeClient()).container.list();
  return {
    ours: list.filter((c) => c.Labels?.[OWNER_LABEL] !== undefined).map((c) => c.Id),
    reapers: list.filter((c) => c.Labels?.['org.testcontainers.ryuk'] === 'true').length,
  };
}

const why = await unavailable();
if (why) console.log(`testcontainers tests skipped: ${why}`);

describe.skipIf(why !== undefined)(`testcontainers (${REDIS_IMAGE})`, () => {
  let shared: TestRedis | undefined;
  afterAll(async () => {
    await shared?.stop();
  });

  it('getTestRedis runs its Redis through testcontainers when an engine answers and REDIS_URL is unset', async () => {
    const saved = process.env.REDIS_URL;
    delete process.env.REDIS_URL;
    try {
      shared = await getTestRedis();
    } finally {
      if (saved !== undefined) process.env.REDIS_URL = saved;
    }
    expect(shared.source).toBe('testcontainers');
    const c = new Redis(shared.url);
    expect(await c.set('k', 'v')).toBe('OK');
    expect(await c.get('k')).toBe('v');
    await c.quit();
  });

  it('starts no reaper container and removes its own container on stop', async () => {
    const container = await startRedisContainer();
    const c = new Redis(container.url);
    expect(await c.ping()).toBe('PONG');
    await c.quit();
    const during = await containerIds();
    expect(during.ours).toContain(container.id);
    expect(during.reapers).toBe(0);
    await container.stop();
    expect((await containerIds()).ours).not.toContain(container.id);
  });

  it('removes a container left by a test process that was killed before it could stop it', async () => {
    const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));
    const child = spawn(process.execPath, ['--input-type=module', '-e', `const { startRedisContainer } = await import(${JSON.stringify(dist)}); const c = await startRedisContainer(); console.log(c.id); setInterval(() => undefined, 1000);`], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const id = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        if (out.includes('\n')) resolve(out.trim());
      });
      child.once('exit', (code) => reject(new Error(`child exited with ${code} before starting a container`)));
    });
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await gone;
    expect((await containerIds()).ours).toContain(id);

    expect(await removeOrphanedContainers()).toBeGreaterThanOrEqual(1);
    expect((await containerIds()).ours).not.toContain(id);
  });
});
