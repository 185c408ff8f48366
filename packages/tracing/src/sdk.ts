import { register } from 'node:module';
import { createAddHookMessageChannel } from 'import-in-the-middle';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import { IORedisInstrumentation } from '@opentelemetry/instrumentation-ioredis';
import { FastifyOtelInstrumentation } from '@fastify/otel';

/** Probes and scrapes: frequent, and noise in a trace viewer. */
const UNTRACED_PATHS = new Set(['/health', '/ready', '/metrics']);

function pathOf(url: string | undefined): string {
  const s = url ?? '';
  const q = s.indexOf('?');
  return q === -1 ? s : s.slice(0, q);
}

/**
 * The SDK with the instrumentations the services need: incoming HTTP and Fastify routes, undici (the
 * peer client and the HTTP providers; it injects W3C traceparent), ioredis. Exporter, protocol,
 * sampler and batching come from the standard OTEL_* variables.
 */
export async function startSdk(opts: { serviceName: string }): Promise<{ shutdown(): Promise<void> }> {
  // ESM: ioredis and fastify are imported, not required, so the import hook must see them load.
  const { registerOptions, waitForAllMessagesAcknowledged } = createAddHookMessageChannel();
  register('import-in-the-middle/hook.mjs', import.meta.url, registerOptions);

  // Traces only: metrics are scraped from /metrics, logs go to stdout. The SDK would otherwise also
  // push both to the endpoint; an operator can still ask for them with these variables.
  process.env.OTEL_METRICS_EXPORTER ??= 'none';
  process.env.OTEL_LOGS_EXPORTER ??= 'none';

  const all = {
    http: () => new HttpInstrumentation({ ignoreIncomingRequestHook: (req) => UNTRACED_PATHS.has(pathOf(req.url)) }),
    undici: () => new UndiciInstrumentation(),
    // The command and how many arguments, never the keys or values: keys carry query text.
    ioredis: () => new IORedisInstrumentation({ dbStatementSerializer: (cmd, args) => `${cmd} [${args.length} args]` }),
    // The route and its handler, not a span per lifecycle hook (several per request, and they cost).
    fastify: () =>
      new FastifyOtelInstrumentation({ registerOnInitialization: true, instrumentHooks: false, ignorePaths: (o) => UNTRACED_PATHS.has(o.url) }),
  };
  // As auto-instrumentations-node names it: a comma-separated list of the ones to leave out.
  const disabled = new Set((process.env.OTEL_NODE_DISABLED_INSTRUMENTATIONS ?? '').split(',').map((s) => s.trim()).filter(Boolean));
  const instrumentations = Object.entries(all)
    .filter(([name]) => !disabled.has(name))
    .map(([, make]) => make());

  const sdk = new NodeSDK({ serviceName: opts.serviceName, instrumentations });
  sdk.start();
  await waitForAllMessagesAcknowledged();
  return { shutdown: () => sdk.shutdown() };
}
