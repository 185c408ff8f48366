import type { Redis } from 'ioredis';

// Tests look at keys by SCAN, never KEYS: the server may be one other test files share, and KEYS would
// block it for the whole keyspace walk.

async function eachPage(client: Redis, match: string, onPage: (keys: string[]) => Promise<void> | void): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', match, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await onPage(keys);
  } while (cursor !== '0');
}

/** Every key matching `match` in the client's DB, sorted, each once (SCAN may return a key twice). */
export async function scanKeys(client: Redis, match = '*'): Promise<string[]> {
  const out = new Set<string>();
  await eachPage(client, match, (keys) => {
    for (const key of keys) out.add(key);
  });
  return [...out].sort();
}

/** How many keys match `match` in the client's DB. */
export async function countKeys(client: Redis, match = '*'): Promise<number> {
  return (await scanKeys(client, match)).length;
}

/** Unlinks every key matching any of `patterns` (a test's own keys: never FLUSHDB a shared server); how many. */
export async function unlinkMatching(client: Redis, ...patterns: string[]): Promise<number> {
  let n = 0;
  for (const pattern of patterns) {
    await eachPage(client, pattern, async (keys) => {
      n += await client.unlink(...keys);
    });
  }
  return n;
}
