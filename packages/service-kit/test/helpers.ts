import { Writable } from 'node:stream';
import { loadConfig, BaseConfig, createService, type ServiceApp } from '../src/index.js';

export const testConfig = (env: Record<string, string> = {}) => loadConfig(BaseConfig, { env: { NODE_ENV: 'test', LOG_LEVEL: 'silent', ...env } });

export async function buildTestApp(name = 'test-svc', env: Record<string, string> = {}): Promise<ServiceApp> {
  return createService({ name, version: '1.2.3', config: testConfig(env), logger: false, defaultMetrics: false });
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
