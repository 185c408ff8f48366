import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type * as TestcontainersModule from 'testcontainers';

/** Image of a testcontainers Redis: REDIS_IMAGE (an air-gapped stand-in, see infra/docker), else the public one. */
export const REDIS_IMAGE = process.env.REDIS_IMAGE || 'redis:7-alpine';

/** Label naming the process that started a container, so a later run can remove what a dead one left. */
export const OWNER_LABEL = 'org.aicache.test-redis.owner-pid';

export interface RedisContainer {
  readonly id: string;
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Stops and removes the container (and its anonymous volumes). */
  stop(): Promise<void>;
}

/** True when a Docker engine may answer: DOCKER_HOST set or a socket where engines put one. */
export function dockerMayAnswer(): boolean {
  if (process.env.DOCKER_HOST || process.env.TESTCONTAINERS_HOST_OVERRIDE) return true;
  return existsSync('/var/run/docker.sock') || existsSync(`${process.env.HOME ?? ''}/.docker/run/docker.sock`);
}

// testcontainers' reaper (ryuk) is an image of its own that an air-gapped engine does not have; this
// module removes its containers itself: on stop(), when the process exits, and, for a process that was
// killed before it could, at the next start in any process.
process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true';

const live = new Set<string>();
process.once('exit', () => {
  if (live.size === 0) return;
  spawnSync('docker', ['rm', '--force', '--volumes', ...live], { stdio: 'ignore', timeout: 10_000 });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes test-redis containers whose owning process is gone; returns how many. */
export async function removeOrphanedContainers(tc?: typeof TestcontainersModule): Promise<number> {
  const { getContainerRuntimeClient } = tc ?? (await import('testcontainers'));
  const client = await getContainerRuntimeClient();
  const orphans = (await client.container.list()).filter((c) => {
    const owner = Number(c.Labels?.[OWNER_LABEL]);
    return Number.isInteger(owner) && owner > 0 && owner !== process.pid && !alive(owner);
  });
  await Promise.all(orphans.map((c) => client.container.dockerode.getContainer(c.Id).remove({ force: true, v: true }).catch(() => undefined)));
  return orphans.length;
}

/**
 * A Redis server in a container started through testcontainers (no persistence), on a random host
 * port. Throws when no engine answers or the image cannot be had.
 */
export async function startRedisContainer(): Promise<RedisContainer> {
  const tc = await import('testcontainers');
  await removeOrphanedContainers(tc);
  const started = await new tc.GenericContainer(REDIS_IMAGE)
    .withExposedPorts(6379)
    // protected-mode: a port mapping reaches the server from the bridge, not from its loopback.
    .withCommand(['redis-server', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'])
    .withLabels({ [OWNER_LABEL]: String(process.pid) })
    .withWaitStrategy(tc.Wait.forLogMessage(/Ready to accept connections/))
    .withStartupTimeout(30_000)
    .start();
  const id = started.getId();
  live.add(id);
  // 'localhost' may resolve to ::1 where the engine published on IPv4 only.
  const reported = started.getHost();
  const host = reported === 'localhost' ? '127.0.0.1' : reported;
  const port = started.getMappedPort(6379);
  return {
    id,
    url: `redis://${host}:${port}`,
    host,
    port,
    stop: async () => {
      await started.stop({ remove: true, removeVolumes: true });
      live.delete(id);
    },
  };
}
