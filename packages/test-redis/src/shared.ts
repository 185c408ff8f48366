import { dockerMayAnswer, startRedisContainer } from './container.js';
import { startRedisServer, type RedisServer } from './server.js';

export interface TestRedis {
  /** Connection URL without a DB index; pick the DB in your client options. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Where this Redis came from. */
  readonly source: 'REDIS_URL' | 'testcontainers' | 'redis-server';
  /** Stops what this helper started; a REDIS_URL server is left alone. */
  stop(): Promise<void>;
}

async function fromTestcontainers(): Promise<TestRedis | undefined> {
  if (!dockerMayAnswer()) return undefined;
  try {
    const c = await startRedisContainer();
    return { url: c.url, host: c.host, port: c.port, source: 'testcontainers', stop: () => c.stop() };
  } catch {
    return undefined;
  }
}

function fromServer(server: RedisServer): TestRedis {
  return { url: server.url, host: server.host, port: server.port, source: 'redis-server', stop: () => server.stop() };
}

/**
 * A real Redis for a test file: REDIS_URL when set, else a testcontainers container when a Docker
 * engine answers, else a redis-server process on a free port. Isolate keys with a unique service
 * name (see uniqueName) so files sharing a REDIS_URL server can run in parallel.
 */
export async function getTestRedis(): Promise<TestRedis> {
  const envUrl = process.env.REDIS_URL;
  if (envUrl) {
    const u = new URL(envUrl);
    return {
      url: envUrl.replace(/\/\d+$/, ''),
      host: u.hostname,
      port: Number(u.port || 6379),
      source: 'REDIS_URL',
      stop: async () => undefined,
    };
  }
  const container = await fromTestcontainers();
  if (container) return container;
  return fromServer(await startRedisServer());
}
