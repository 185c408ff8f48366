import { streamEntries, type RedisClient } from '@aicache/cache';
import { within } from './limits/shared.js';

export interface AuditEntry {
  /** Stream id (`<ms>-<seq>`): the order of record across every service. */
  id: string;
  at: string;
  service: string;
  /** Who: `<username> (<user id>, <credential id>)` or `bootstrap-admin`. */
  actor: string;
  tenant: string;
  /** What: e.g. `user.create`, `key.revoke`, `DELETE /api/v1/cache/clear`. */
  action: string;
  /** On what: a user id, a key id, a route's parameters. */
  target: string;
  status: string;
  requestId: string;
}

export interface AuditLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

/**
 * Admin actions, kept in one Redis stream on the state Redis (XADD with an approximate MAXLEN, so it stays bounded)
 * and written to the log. Recording never fails the action it records: a Redis error is logged.
 */
export class AuditLog {
  constructor(
    private readonly redis: RedisClient,
    readonly key: string,
    private readonly maxLen: number,
    private readonly service: string,
    private readonly timeoutMs: number,
  ) {}

  async record(entry: Omit<AuditEntry, 'id' | 'at' | 'service'>, logger: AuditLogger): Promise<void> {
    const full = { at: new Date().toISOString(), service: this.service, ...entry };
    logger.info({ audit: full }, 'audit');
    const fields = Object.entries(full).flat();
    try {
      await within(this.redis.xadd(this.key, 'MAXLEN', '~', this.maxLen, '*', ...fields), this.timeoutMs);
    } catch (err) {
      logger.warn({ err: { message: (err as Error).message }, audit: full }, 'audit: the entry could not be written to the stream');
    }
  }

  /** Newest first; `before` (a stream id) pages back. */
  async read(count: number, before?: string): Promise<AuditEntry[]> {
    const end = before ? `(${before}` : '+';
    const rows = (await this.redis.xrevrange(this.key, end, '-', 'COUNT', count)) as Array<[string, string[]]>;
    return streamEntries(rows).map(({ id, fields: o }) => ({
      id,
      at: o.at ?? '',
      service: o.service ?? '',
      actor: o.actor ?? '',
      tenant: o.tenant ?? '',
      action: o.action ?? '',
      target: o.target ?? '',
      status: o.status ?? '',
      requestId: o.requestId ?? '',
    }));
  }
}
