/**
 * Traces for a service, off unless an OTLP endpoint is configured. This module is all a service loads
 * when tracing is off: the OpenTelemetry SDK and its instrumentations are imported only when
 * OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set.
 *
 * The instrumentations patch ioredis, Fastify and Node's http when those modules are loaded, so
 * startTracing must run before the service imports them: a service's server.ts awaits it, then
 * imports the rest of the service dynamically.
 */

import { existsSync, readFileSync } from 'node:fs';
import { parseEnv } from 'node:util';

export interface TracingOptions {
  /** The service name when neither OTEL_SERVICE_NAME nor SERVICE_NAME is set. */
  serviceName: string;
  /** Defaults to process.env, over the OTEL_* lines of `.env` in the working directory. */
  env?: NodeJS.ProcessEnv;
}

interface Running {
  shutdown(): Promise<void>;
}

let running: Running | undefined;

/** Whether the environment asks for traces: an OTLP endpoint is set and the SDK is not disabled. */
export function tracingRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  if ((env.OTEL_SDK_DISABLED ?? '').trim().toLowerCase() === 'true') return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim());
}

/**
 * The OTEL_* variables of `.env` under the real environment, as the services read the rest of their
 * settings (loadConfig). They are copied into process.env, where the SDK reads them.
 */
function withDotenv(): NodeJS.ProcessEnv {
  if (!existsSync('.env')) return process.env;
  const file = parseEnv(readFileSync('.env', 'utf8'));
  for (const [name, value] of Object.entries(file)) {
    if (name.startsWith('OTEL_') && process.env[name] === undefined && value !== undefined) process.env[name] = value;
  }
  return process.env;
}

/** Starts the SDK when tracingRequested(); returns whether it did. Calling it again is a no-op. */
export async function startTracing(opts: TracingOptions): Promise<boolean> {
  if (running) return true;
  const env = opts.env ?? withDotenv();
  if (!tracingRequested(env)) return false;
  const { startSdk } = await import('./sdk.js');
  running = await startSdk({ serviceName: env.OTEL_SERVICE_NAME?.trim() || env.SERVICE_NAME?.trim() || opts.serviceName });
  return true;
}

/** Exports the spans still buffered and stops the SDK; a no-op when tracing is off. */
export async function shutdownTracing(): Promise<void> {
  const r = running;
  running = undefined;
  await r?.shutdown();
}
