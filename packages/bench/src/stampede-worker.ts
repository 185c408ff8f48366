// Child process of row 3: one "replica" that fires many concurrent getOrSet calls on one cold key.
import { childArgs, serveRequests } from './child.js';
import { bento, cacheManager } from './competitors.js';
import { ourCache, ready } from './ours.js';
import { makeSearchAnswer, type SearchAnswer } from './payload.js';
import { client } from './redis.js';
import { nowMs, sleep } from './stats.js';

interface Args {
  redisUrl: string;
  db: number;
}
interface RunRequest {
  lib: 'ours' | 'bentocache' | 'cache-manager';
  key: string;
  counterKey: string;
  callers: number;
  loaderMs: number;
  startAt: number;
}

const args = childArgs<Args>();
const answer = makeSearchAnswer();
const ours = ourCache(args.redisUrl, 'bench-stampede', { answers: { ttl: 3600 } }, args.db);
const cat = ours.category('answers');
const bentoClient = client(args.redisUrl, args.db, 'bench-stampede-bento');
const bc = bento(bentoClient, 'bench-stampede-bento');
const { cm } = await cacheManager(args.redisUrl, args.db, 'bench-stampede-cm');
const counter = client(args.redisUrl, args.db, 'bench-stampede-counter');
await ready(ours);
await counter.ping();

serveRequests(async (msg) => {
  const r = msg as unknown as RunRequest;
  const loader = async (): Promise<SearchAnswer> => {
    await sleep(r.loaderMs);
    await counter.incr(r.counterKey);
    return answer;
  };
  const call = (): Promise<unknown> => {
    if (r.lib === 'ours') return cat.getOrSet(r.key, loader);
    if (r.lib === 'bentocache') return bc.getOrSet({ key: r.key, factory: loader, ttl: '1h' });
    return cm.wrap(r.key, loader, 3_600_000);
  };
  // All processes start at the same wall-clock moment, so the key is cold for every one of them.
  await sleep(Math.max(0, r.startAt - Date.now()));
  const t0 = nowMs();
  const settled = await Promise.allSettled(Array.from({ length: r.callers }, call));
  const ms = nowMs() - t0;
  let ok = 0;
  let wrong = 0;
  let failed = 0;
  for (const s of settled) {
    if (s.status === 'rejected') failed++;
    else if ((s.value as SearchAnswer | undefined)?.results?.length === answer.results.length) ok++;
    else wrong++;
  }
  return { ok, wrong, failed, ms };
});
process.send?.({ ready: true });
