import { Writable } from 'node:stream';
import { loadConfig, BaseConfig, createService, type KitLogger, type ServiceApp } from '../src/index.js';

export const testConfig = (env: Record<string, string> = {}) => loadConfig(BaseConfig, { env: { NODE_ENV: 'test', LOG_LEVEL: 'silent', ...env } });

export async function buildTestApp(name = 'test-svc', env: Record<string, string> = {}): Promise<ServiceApp> {
  return createService({ name, version: '1.2.3', config: testConfig(env), logger: false, defaultMetrics: false });
}

/** A logger that keeps what it is given, with its level. */
export function recordingLogger() {
  const lines: { level: string; obj: object; msg?: string }[] = [];
  const logger: KitLogger = {
    info: (obj, msg) => lines.push({ level: 'info', obj, msg }),
    warn: (obj, msg) => lines.push({ level: 'warn', obj, msg }),
    error: (obj, msg) => lines.push({ level: 'error', obj, msg }),
  };
  return { logger, lines };
}

/** A pino destination that keeps every line, parsed. */
export function captureStream(): { stream: Writable; lines: () => Record<string, unknown>[]; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  const text = () => chunks.join('');
  return {
    stream,
    text,
    lines: () =>
      text()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}
