import { createRequire } from 'node:module';
import { trace } from '@opentelemetry/api';
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

/** Settings that are or may hold a secret (a URL with a password in it), wherever a config object is logged. */
const SECRET_SETTINGS = [
  'REDIS_PASSWORD',
  'REDIS_URL',
  'REDIS_STATE_URL',
  'REDIS_SENTINEL_PASSWORD',
  'REDIS_STATE_SENTINEL_PASSWORD',
  'DATABASE_URL',
  'CACHE_ADMIN_TOKEN',
  'SERVICE_TOKEN_SECRET',
  'EMBEDDINGS_API_KEY',
  'LLM_API_KEY',
];

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'authorization',
  'password',
  'token',
  'apiKey',
  'api_key',
  '*.password',
  '*.token',
  '*.apiKey',
  '*.api_key',
  ...SECRET_SETTINGS,
  ...SECRET_SETTINGS.map((name) => `*.${name}`),
];

export interface LoggerConfig {
  LOG_LEVEL?: string;
  NODE_ENV?: string;
}

/**
 * trace_id and span_id of the active span, so a log line can be found from a trace and back. Without
 * the tracing SDK there is never an active span and this adds nothing.
 */
export function traceIds(): Record<string, string> {
  const span = trace.getActiveSpan();
  if (!span) return {};
  const { traceId, spanId } = span.spanContext();
  return { trace_id: traceId, span_id: spanId };
}

/** pino options for a service: level from config, secrets redacted, pretty only on a TTY outside production. */
export function loggerOptions(config: LoggerConfig, overrides: LoggerOptions = {}): LoggerOptions {
  const opts: LoggerOptions = {
    level: config.LOG_LEVEL ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    mixin: traceIds,
    ...overrides,
  };
  if (opts.transport === undefined && process.stdout.isTTY && config.NODE_ENV !== 'production') {
    // Resolved from here: under pnpm, pino itself cannot see pino-pretty.
    const target = createRequire(import.meta.url).resolve('pino-pretty');
    opts.transport = { target, options: { translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } };
  }
  return opts;
}

/** A standalone pino logger with the service settings (for scripts, or to hand to createService). */
export function createLogger(config: LoggerConfig, destination?: DestinationStream): Logger {
  if (destination) return pino({ ...loggerOptions(config), transport: undefined }, destination);
  return pino(loggerOptions(config));
}

/** Strips passwords from URLs (redis://user:pass@host → redis://user:***@host) anywhere in a string. */
export function redactUrl(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/[^:/?#\s@]*:)[^@/\s]*@/gi, '$1***@');
}
