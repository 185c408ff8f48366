import { Redis } from 'ioredis';
import type { RedisServer } from './server.js';

export interface RedisNodeAddress {
  host: string;
  port: number;
}

/** The server's process is running (it may still be paused). */
export const isAlive = (s: RedisServer): boolean => s.pid !== undefined && isRunning(s.pid);

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A short-lived plain connection to one node, for the harness's own questions. */
export async function askNode<T>(server: RedisServer, password: string | undefined, fn: (c: Redis) => Promise<T>): Promise<T> {
  const c = new Redis({
    host: server.host,
    port: server.port,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
    connectTimeout: 1000,
    commandTimeout: 2000,
    ...(password ? { password } : {}),
  });
  c.on('error', () => undefined);
  try {
    await c.connect();
    return await fn(c);
  } finally {
    c.disconnect();
  }
}

export function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

export async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

