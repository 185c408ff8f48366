// Child process: the autocannon load generator of row 1, so it never shares an event loop with the server.
import autocannon from 'autocannon';
import { serveRequests } from './child.js';
import { percentile } from './stats.js';

interface LoadRequest {
  url: string;
  seconds: number;
  connections: number;
  /** A POST with this JSON body; a GET when absent. */
  jsonBody?: string;
  /** Extra request headers (e.g. authorization), sent on every request. */
  headers?: Record<string, string>;
}

serveRequests(async (msg) => {
  const { url, seconds, connections, jsonBody, headers = {} } = msg as unknown as LoadRequest;
  const post =
    jsonBody === undefined ? { headers } : { method: 'POST' as const, body: jsonBody, headers: { 'content-type': 'application/json', ...headers } };
  // autocannon's own histogram keeps whole milliseconds, too coarse for sub-millisecond answers:
  // take each response time (hrtime, float ms) from its 'response' event instead.
  const times: number[] = [];
  const r = await new Promise<autocannon.Result>((resolve, reject) => {
    const inst = autocannon({ url, connections, duration: seconds, pipelining: 1, ...post }, (err, res) => (err ? reject(err) : resolve(res)));
    inst.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (statusCode >= 200 && statusCode < 300) times.push(responseTime);
    });
  });
  return {
    rps: r['2xx'] / r.duration,
    p50: percentile(times, 50),
    p99: percentile(times, 99),
    ok: r['2xx'],
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
  };
});
process.send?.({ ready: true });
