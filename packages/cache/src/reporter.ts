import type { CacheLogger } from './types.js';

export const silentLogger: CacheLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

/**
 * Logs Redis trouble at most once per interval, with how many failures were not logged in between,
 * so an outage cannot flood the logs. Only the error's message and code are logged (never options or URLs).
 */
export class ErrorReporter {
  private lastLogAt = 0;
  private suppressed = 0;

  constructor(
    private readonly logger: CacheLogger,
    private readonly intervalMs = 5000,
  ) {}

  report(err: unknown, ctx: { service: string; op: string; category?: string }): void {
    const now = Date.now();
    if (now - this.lastLogAt < this.intervalMs) {
      this.suppressed++;
      return;
    }
    const e = err as { message?: unknown; code?: unknown; name?: unknown };
    this.logger.warn(
      {
        ...ctx,
        err: { name: String(e?.name ?? 'Error'), message: String(e?.message ?? err), ...(e?.code ? { code: String(e.code) } : {}) },
        suppressed: this.suppressed,
      },
      'cache call degraded to a miss',
    );
    this.lastLogAt = now;
    this.suppressed = 0;
  }
}
