import { createServer, connect, type Socket } from 'node:net';

export interface DelayProxy {
  /** `127.0.0.1:<port>` clients connect to instead of the target. */
  host: string;
  port: number;
  /** Added to each direction: a round trip through the proxy waits 2 × delayMs more. Change it only while the link is idle (order holds for one delay). */
  delayMs: number;
  close(): Promise<void>;
}

/**
 * A TCP proxy to `target` that holds every chunk `delayMs` before passing it on, in order, both ways: a link with
 * latency, to make round trips countable by time (a Redis behind it answers a command no sooner than 2 × delayMs).
 */
export async function startDelayProxy(target: { host: string; port: number }, delayMs: number): Promise<DelayProxy> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    for (const s of [client, upstream]) {
      s.setNoDelay(true);
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    // Chunks handed on after the delay; timers of one delay fire in the order they were set, so order is kept.
    const pass = (from: Socket, to: Socket) => {
      from.on('data', (chunk) => {
        const send = () => {
          if (!to.destroyed) to.write(chunk);
        };
        if (proxy.delayMs > 0) setTimeout(send, proxy.delayMs);
        else send();
      });
      from.on('end', () => setTimeout(() => to.end(), proxy.delayMs));
    };
    pass(client, upstream);
    pass(upstream, client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  const proxy: DelayProxy = {
    host: '127.0.0.1',
    port: typeof addr === 'object' && addr ? addr.port : 0,
    delayMs,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  return proxy;
}
