import fp from 'fastify-plugin';
import { Type } from 'typebox';
import type { FastifyInstance } from 'fastify';
import { redactUrl } from './logger.js';
import { admitUnderPressure } from './pressure.js';

export interface ReadinessResult {
  ok: boolean;
  detail?: string;
  /** Ready, but working in a reduced mode (e.g. cache down, answering without it). */
  degraded?: boolean;
}
export type ReadinessCheck = () => Promise<ReadinessResult | boolean> | ReadinessResult | boolean;
export interface ReadinessCheckOptions {
  /** A failing optional check makes /ready answer 200 'degraded' instead of 503. Default true. */
  required?: boolean;
  /** Default 1000 ms; a check that takes longer fails. */
  timeoutMs?: number;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Adds a check that GET /ready runs (all checks in parallel, each bounded by a timeout). */
    addReadinessCheck(name: string, check: ReadinessCheck, opts?: ReadinessCheckOptions): void;
  }
}

export interface HealthOptions {
  name: string;
  version: string;
}

const CheckResult = Type.Object({
  ok: Type.Boolean(),
  detail: Type.Optional(Type.String()),
  degraded: Type.Optional(Type.Boolean()),
  required: Type.Boolean(),
  latency_ms: Type.Number(),
});
const ReadyResponse = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('degraded'), Type.Literal('not_ready')]),
  checks: Type.Record(Type.String(), CheckResult),
});
const HealthResponse = Type.Object({
  status: Type.Literal('ok'),
  service: Type.String(),
  version: Type.String(),
  uptime_s: Type.Number(),
});

async function runCheck(check: ReadinessCheck, timeoutMs: number): Promise<ReadinessResult> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<ReadinessResult>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, detail: `timed out after ${timeoutMs} ms` }), timeoutMs);
  });
  try {
    const result = await Promise.race([Promise.resolve().then(check), timeout]);
    return typeof result === 'boolean' ? { ok: result } : result;
  } catch (err) {
    return { ok: false, detail: redactUrl(err instanceof Error ? err.message : String(err)) };
  } finally {
    clearTimeout(timer);
  }
}

async function health(app: FastifyInstance, opts: HealthOptions): Promise<void> {
  const checks = new Map<string, { check: ReadinessCheck; required: boolean; timeoutMs: number }>();
  const startedAt = Date.now();

  app.decorate('addReadinessCheck', (name: string, check: ReadinessCheck, o: ReadinessCheckOptions = {}) => {
    if (checks.has(name)) throw new Error(`readiness check '${name}' is already registered`);
    checks.set(name, { check, required: o.required ?? true, timeoutMs: o.timeoutMs ?? 1000 });
  });

  app.get(
    '/health',
    {
      logLevel: 'warn',
      config: { rateLimit: false, pressureHandler: admitUnderPressure },
      schema: { tags: ['ops'], summary: 'Liveness: the process answers', response: { 200: HealthResponse } },
    },
    async () => ({ status: 'ok' as const, service: opts.name, version: opts.version, uptime_s: Math.round((Date.now() - startedAt) / 1000) }),
  );

  app.get(
    '/ready',
    {
      logLevel: 'warn',
      config: { rateLimit: false, pressureHandler: admitUnderPressure },
      schema: { tags: ['ops'], summary: 'Readiness: dependencies answer', response: { 200: ReadyResponse, 503: ReadyResponse } },
    },
    async (request, reply) => {
      const entries = await Promise.all(
        [...checks].map(async ([name, c]) => {
          const started = performance.now();
          const r = await runCheck(c.check, c.timeoutMs);
          const latency_ms = Math.round((performance.now() - started) * 10) / 10;
          return [name, { ok: r.ok, ...(r.detail !== undefined ? { detail: r.detail } : {}), ...(r.degraded ? { degraded: true } : {}), required: c.required, latency_ms }] as const;
        }),
      );
      const results = Object.fromEntries(entries);
      const list = Object.values(results);
      const ready = list.every((r) => r.ok || !r.required);
      if (!ready) {
        request.log.warn({ checks: results }, 'not ready');
        return reply.code(503).send({ status: 'not_ready' as const, checks: results });
      }
      const degraded = list.some((r) => !r.ok || r.degraded);
      return { status: degraded ? ('degraded' as const) : ('ready' as const), checks: results };
    },
  );
}

export const healthPlugin = fp(health, { name: '@aicache/service-kit/health', fastify: '5.x' });
