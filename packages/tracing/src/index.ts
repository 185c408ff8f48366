/**
 * Traces for a service, off unless an OTLP endpoint is configured. This module is all a service loads
 * when tracing is off: the OpenTelemetry SDK and its instrumentations are imported only when
 * OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set.
 *
 * The instrumentations patch ioredis, Fastify and Node's http when those modules are loaded, so
 * startTracing must run before the service imports them: a service's server.ts awaits it, then
 * imports the rest of the service dynamically.
 */

export interface TracingOptions {
  /** The service name when neither OTEL_SERVICE_NAME nor SERVICE_NAME is set. */
  serviceName: string;
  /** Defaults to process.env. */
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

/** Starts the SDK when tracingRequested(); returns whether it did. Calling it again is a no-op. */
export async function startTracing(opts: TracingOptions): Promise<boolean> {
  const env = opts.env ?? process.env;
  if (running) return true;
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
