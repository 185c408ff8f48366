import { client, commandCalls, commandDelta, describeCalls, sumCalls } from '../redis.js';
import { ourCache, ready } from '../ours.js';
import { makeSearchAnswer } from '../payload.js';

export interface L1Probe {
  available: boolean;
  /** Redis commands seen for `reads` wrapJson hits of one key after a first read. */
  commands: number;
  reads: number;
  detail: string;
}

/**
 * Whether CategorySpec.l1MaxBytes really serves hits in-process: after one read of a key, `reads` more
 * wrapJson calls should reach Redis (almost) never. Counted with INFO commandstats deltas; the DB used is
 * otherwise idle, and the cache's stats flush is pushed out of the window.
 */
export async function probeL1(redisUrl: string, db: number, reads = 100): Promise<L1Probe> {
  const cache = ourCache(redisUrl, 'bench-l1probe', { probe: { ttl: 600, l1MaxBytes: 4 * 1024 * 1024 } }, db, { statsFlushIntervalMs: 3_600_000 });
  const admin = client(redisUrl, db);
  try {
    await ready(cache);
    const cat = cache.category('probe');
    const answer = makeSearchAnswer();
    await cat.delete('k');
    await cat.wrapJson('k', async () => answer);
    await cat.wrapJson('k', async () => answer);
    const before = await commandCalls(admin);
    for (let i = 0; i < reads; i++) await cat.wrapJson('k', async () => answer);
    const delta = commandDelta(before, await commandCalls(admin));
    const commands = sumCalls(delta);
    return { available: commands < reads / 4, commands, reads, detail: `${reads} wrapJson hits of one key sent ${commands} Redis commands (${describeCalls(delta)})` };
  } finally {
    await cache.close();
    admin.disconnect();
  }
}
