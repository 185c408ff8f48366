// Child process of row 5: PINGs Redis every ~1 ms from its own event loop and records each reply's latency,
// so the figure shows how long Redis stopped answering, not how busy the bench process was.
import { childArgs, serveRequests } from './child.js';
import { client } from './redis.js';
import { max, nowMs, percentile } from './stats.js';

const args = childArgs<{ redisUrl: string; everyMs: number }>();
const r = client(args.redisUrl, 0, 'bench-pinger');
await r.ping();

let timer: NodeJS.Timeout | undefined;
let samples: number[] = [];
let inFlight = 0;

serveRequests(async (msg) => {
  if (msg.type === 'start') {
    samples = [];
    timer = setInterval(() => {
      const t0 = nowMs();
      inFlight++;
      r.ping().then(
        () => {
          inFlight--;
          samples.push(nowMs() - t0);
        },
        () => {
          inFlight--;
          samples.push(Number.POSITIVE_INFINITY);
        },
      );
    }, args.everyMs);
    return {};
  }
  if (msg.type === 'stop') {
    clearInterval(timer);
    while (inFlight > 0) await new Promise((res) => setTimeout(res, 1));
    return { count: samples.length, max: max(samples), p99: percentile(samples, 99), p50: percentile(samples, 50) };
  }
  throw new Error(`unknown request ${String(msg.type)}`);
});
process.send?.({ ready: true });
