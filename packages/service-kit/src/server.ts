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
  /** Runs once the app is closed, before the process exits (e.g. exporting the traces still buffered). */
  afterClose?: () => Promise<void>;
}

/** Listens on HOST:PORT and closes the app on SIGINT/SIGTERM (or a crash) with close-with-grace. Returns the address. */
export async function runServer(app: FastifyInstance, config: ServerConfig, opts: RunServerOptions = {}): Promise<string> {
  const grace = closeWithGrace({ delay: opts.graceMs ?? 10_000, logger: { error: (m: unknown) => app.log.error(m) } }, async ({ signal, err }) => {
    if (err) app.log.error({ err }, 'closing after an error');
    else app.log.info({ signal }, 'closing');
    await app.close();
    app.log.info('closed');
    if (opts.afterClose) await opts.afterClose().catch((e: unknown) => app.log.warn({ err: e }, 'after close'));
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
