import type { ServerResponse } from 'node:http';
import closeWithGrace from 'close-with-grace';
import type { FastifyInstance } from 'fastify';
import { redactUrl } from './logger.js';

export interface ServerConfig {
  HOST: string;
  PORT: number;
}

export interface RunServerOptions {
  /** Ms to wait for in-flight work on SIGINT/SIGTERM before exiting anyway. Default 10000. */
  graceMs?: number;
}

/** Listens on HOST:PORT and closes the app on SIGINT/SIGTERM (or a crash) with close-with-grace. Returns the address. */
export async function runServer(app: FastifyInstance, config: ServerConfig, opts: RunServerOptions = {}): Promise<string> {
  // A request in flight when closing starts would leave its connection kept alive after the answer,
  // and the close would wait for the client to drop it until the grace delay ends the process with an
  // error: such answers say Connection: close, and connections are closed as soon as they are idle.
  const inFlight = new Set<ServerResponse>();
  app.server.on('request', (_req, res: ServerResponse) => {
    inFlight.add(res);
    res.once('close', () => inFlight.delete(res));
  });
  const grace = closeWithGrace({ delay: opts.graceMs ?? 10_000, logger: { error: (m: unknown) => app.log.error(m) } }, async ({ signal, err }) => {
    if (err) app.log.error({ err }, 'closing after an error');
    else app.log.info({ signal }, 'closing');
    for (const res of inFlight) if (!res.headersSent) res.shouldKeepAlive = false;
    const closeIdle = setInterval(() => app.server.closeIdleConnections(), 50);
    try {
      await app.close();
    } finally {
      clearInterval(closeIdle);
    }
  });
  // Not an onClose hook: hooks cannot be added once the app is ready, and callers may have readied it.
  app.server.once('close', () => grace.uninstall());
  try {
    const address = await app.listen({ host: config.HOST, port: config.PORT });
    app.log.info({ address: redactUrl(address) }, 'service listening');
    return address;
  } catch (err) {
    grace.uninstall();
    throw err;
  }
}
