import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { tracingRequested } from '../src/index.js';

const run = promisify(execFile);
const DIST = new URL('../dist/index.js', import.meta.url).href;

/** startTracing in a fresh process; reports whether it started and which SDK modules got loaded. */
async function startIn(env: Record<string, string>, cwd?: string): Promise<{ started: boolean; loaded: string[] }> {
  const script = `
    import { createRequire } from 'node:module';
    const { startTracing, shutdownTracing } = await import(${JSON.stringify(DIST)});
    const started = await startTracing({ serviceName: 'probe' });
    const cache = createRequire(import.meta.url).cache;
    const loaded = Object.keys(cache).filter((f) => f.includes('@opentelemetry/sdk-node') || f.includes('import-in-the-middle'));
    await shutdownTracing();
    console.log(JSON.stringify({ started, loaded }));
  `;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
    env: { PATH: process.env.PATH ?? '', ...env },
    timeout: 20_000,
    cwd,
  });
  return JSON.parse(stdout.trim().split('\n').pop()!) as { started: boolean; loaded: string[] };
}

describe('tracingRequested', () => {
  it('is on only with an OTLP endpoint, and OTEL_SDK_DISABLED=true wins', () => {
    expect(tracingRequested({})).toBe(false);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: '  ' })).toBe(false);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: 'TRUE' })).toBe(false);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: 'false' })).toBe(true);
  });
});

describe('startTracing', () => {
  it('loads nothing of the SDK without an endpoint', async () => {
    expect(await startIn({})).toEqual({ started: false, loaded: [] });
  });

  it('loads and starts the SDK with an endpoint', async () => {
    const { started, loaded } = await startIn({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' });
    expect(started).toBe(true);
    expect(loaded.some((f) => f.includes('@opentelemetry/sdk-node'))).toBe(true);
  });

  it('reads the endpoint from .env in the working directory, as the services read their settings', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tracing-dotenv-'));
    try {
      writeFileSync(join(dir, '.env'), 'OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:9\nOTEL_EXPORTER_OTLP_PROTOCOL=http/json\n');
      expect((await startIn({}, dir)).started).toBe(true);
      // The real environment wins over the file.
      expect((await startIn({ OTEL_EXPORTER_OTLP_ENDPOINT: '' }, dir)).started).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
