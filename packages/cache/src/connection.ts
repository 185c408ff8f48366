import type { Redis } from 'ioredis';

/**
 * Closes a client without hanging while Redis is away: QUIT, bounded by `quitWaitMs`, only when connected (sent
 * while reconnecting, QUIT would wait in the offline queue), then a disconnect of whatever is left.
 */
export async function quitOrDisconnect(client: Redis, quitWaitMs = 1000): Promise<void> {
  if (client.status === 'end') return;
  if (client.status === 'ready') {
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, quitWaitMs)));
    await Promise.race([client.quit().then(() => undefined, () => undefined), bound]);
    clearTimeout(timer);
  }
  if ((client.status as string) !== 'end') client.disconnect();
}

/**
 * The server clock's offset from this process's, ms, from a TIME reply received between local times t0 and t1
 * (the midpoint of the round trip is taken as the moment Redis read its clock).
 */
export function serverClockOffset(time: ArrayLike<string | number>, t0: number, t1: number): number {
  return Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000) - (t0 + t1) / 2;
}
