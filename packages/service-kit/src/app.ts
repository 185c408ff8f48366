import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyServerOptions, type RawServerDefault } from 'fastify';
import AjvCompiler from '@fastify/ajv-compiler';
import underPressure, { type FastifyUnderPressureOptions as UnderPressureOptions } from '@fastify/under-pressure';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { LoggerOptions } from 'pino';
import type { BaseConfig } from './config.js';
import { loggerOptions } from './logger.js';
import { healthPlugin } from './health.js';
import { metricsPlugin } from './metrics.js';
import { docsPlugin } from './docs.js';
import { formatValidationErrors } from './validation.js';
import type { ErrorResponse } from './errors.js';

export type ServiceApp = FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, FastifyBaseLogger, TypeBoxTypeProvider>;

/** The settings createService reads; services pass their whole config. */
export type ServiceConfig = Pick<BaseConfig, 'NODE_ENV' | 'LOG_LEVEL' | 'BODY_LIMIT_BYTES'> & Partial<BaseConfig>;

/** TRUST_PROXY as Fastify takes it: a boolean, or a list of addresses, CIDRs and proxy-addr names. */
export function trustProxyOf(value: string | undefined): boolean | string[] {
  if (value === undefined || value === 'false') return false;
  if (value === 'true') return true;
  return value.split(',').map((v) => v.trim());
}

export interface CreateServiceOptions {
  name: string;
  version: string;
  config: ServiceConfig;
  /** false = silent; pino options are merged over the kit's; a pino logger instance is used as it is. */
  logger?: false | LoggerOptions | FastifyBaseLogger;
  /** Swagger + /docs; default true. */
  docs?: boolean;
  /** Default metrics (event loop, memory...) in /metrics; default true. */
  defaultMetrics?: boolean;
  /** under-pressure options over the kit's, or false to leave it out. */
  underPressure?: false | UnderPressureOptions;
  /** Extra Fastify server options (escape hatch; the kit's own settings win for request ids and the body limit). */
  fastify?: Omit<FastifyServerOptions, 'logger' | 'loggerInstance'>;
}

const REQUEST_ID = /^[\w.:-]{1,128}$/;

/** Stable codes for framework errors (FST_* codes are Fastify internals, not an API). */
const CODE_BY_STATUS: Record<number, string> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  406: 'NOT_ACCEPTABLE',
  408: 'REQUEST_TIMEOUT',
  409: 'CONFLICT',
  411: 'LENGTH_REQUIRED',
  413: 'BODY_TOO_LARGE',
  414: 'URI_TOO_LONG',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  422: 'UNPROCESSABLE_ENTITY',
  429: 'RATE_LIMITED',
  431: 'HEADERS_TOO_LARGE',
  502: 'BAD_GATEWAY',
  503: 'SERVICE_UNAVAILABLE',
  504: 'GATEWAY_TIMEOUT',
};

type BuildValidator = NonNullable<NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>['buildValidator']>;
const ajvFactory = AjvCompiler();

/**
 * Query strings, params and headers arrive as text and are coerced to their schema types; bodies are JSON
 * and are not, so `{"title": 42}` is a 400 instead of silently becoming "42".
 */
const buildValidator: BuildValidator = (externalSchemas, ajvOptions) => {
  const options = (ajvOptions ?? { customOptions: {} }) as { customOptions?: Record<string, unknown>; plugins?: unknown[] };
  const loose = ajvFactory(externalSchemas, options as never);
  const strict = ajvFactory(externalSchemas, { ...options, customOptions: { ...options.customOptions, coerceTypes: false } } as never);
  return (route) => (route.httpPart === 'body' ? strict(route) : (finiteOnly(loose(route)) as unknown as ReturnType<typeof loose>));
};

type AjvValidate = ((data: unknown) => boolean) & { errors?: unknown };

/**
 * Ajv coerces "1e400" to Infinity and then skips minimum/maximum for non-finite numbers, so a query
 * string could hand Infinity to a handler (and on to Redis). Flat parts (query, params, headers) are
 * checked for it after coercion.
 */
function finiteOnly(validate: unknown): AjvValidate {
  const inner = validate as AjvValidate;
  const guarded: AjvValidate = (data: unknown) => {
    const ok = inner(data);
    guarded.errors = inner.errors;
    if (!ok || typeof data !== 'object' || data === null) return ok;
    for (const [key, value] of Object.entries(data)) {
      if (typeof value === 'number' && !Number.isFinite(value)) {
        guarded.errors = [{ keyword: 'type', instancePath: `/${key}`, schemaPath: '', params: {}, message: 'must be a finite number' }];
        return false;
      }
    }
    return true;
  };
  return guarded;
}

function isLoggerInstance(x: unknown): x is FastifyBaseLogger {
  return typeof x === 'object' && x !== null && typeof (x as { child?: unknown }).child === 'function' && typeof (x as { info?: unknown }).info === 'function';
}

/** Turns any thrown value into the one error body; 500s get a generic message, the real error goes to the log only. */
export function renderError(err: Partial<FastifyError> & { status?: unknown }, requestId: string): ErrorResponse {
  if (err.validation) {
    return { statusCode: 400, code: 'VALIDATION_ERROR', error: STATUS_CODES[400]!, message: err.message ?? 'invalid request' };
  }
  const raw = typeof err.statusCode === 'number' ? err.statusCode : typeof err.status === 'number' ? err.status : 500;
  const statusCode = Number.isInteger(raw) && raw >= 400 && raw <= 599 ? raw : 500;
  const error = STATUS_CODES[statusCode] ?? 'Error';
  if (statusCode === 500) {
    return { statusCode, code: 'INTERNAL_ERROR', error, message: `An internal error occurred (request id ${requestId})` };
  }
  const own = typeof err.code === 'string' && /^[A-Z][A-Z0-9_]*$/.test(err.code) && !err.code.startsWith('FST_');
  let code = own ? err.code! : CODE_BY_STATUS[statusCode] ?? (statusCode >= 500 ? 'SERVER_ERROR' : 'BAD_REQUEST');
  if (!own && statusCode === 400 && err instanceof SyntaxError) code = 'INVALID_JSON';
  return { statusCode, code, error, message: err.message || error };
}

/**
 * A Fastify app with what every service needs: TypeBox types, pino with redaction, request ids,
 * the one error shape, /health, /ready, /metrics, /docs, under-pressure and the body limit.
 * Services register their plugins and routes on it afterwards.
 */
export async function createService(opts: CreateServiceOptions): Promise<ServiceApp> {
  const { config } = opts;
  const logging: Pick<FastifyServerOptions, 'logger' | 'loggerInstance'> =
    opts.logger === false
      ? { logger: false }
      : isLoggerInstance(opts.logger)
        ? { loggerInstance: opts.logger }
        : { logger: loggerOptions(config, opts.logger ?? {}) as FastifyServerOptions['logger'] };

  const app = Fastify({
    trustProxy: trustProxyOf(config.TRUST_PROXY),
    ...opts.fastify,
    ...logging,
    bodyLimit: config.BODY_LIMIT_BYTES,
    // Our own genReqId reads the header so a malformed or huge id is replaced, not logged and echoed.
    requestIdHeader: false,
    genReqId: (req) => {
      const header = req.headers['x-request-id'];
      return typeof header === 'string' && REQUEST_ID.test(header) ? header : randomUUID();
    },
    schemaController: { compilersFactory: { buildValidator } },
    schemaErrorFormatter: formatValidationErrors,
    ajv: { customOptions: { removeAdditional: false, ...opts.fastify?.ajv?.customOptions }, plugins: opts.fastify?.ajv?.plugins ?? [] },
  }).withTypeProvider<TypeBoxTypeProvider>() as unknown as ServiceApp;

  // Node's server.close() ends only the connections idle at that moment, and Fastify keeps an idle
  // keep-alive socket for 72 s: a request in flight at SIGTERM would answer keep-alive and hold the server
  // open past the grace delay, so the onClose hooks (final stats flush, QUIT) never ran. While closing,
  // answers say `connection: close`, and a connection that goes idle (its headers were sent before) is ended.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });

  app.addHook('onSend', async (request, reply, payload) => {
    reply.header('x-request-id', request.id);
    if (closing) reply.header('connection', 'close');
    return payload;
  });

  app.addHook('onResponse', async () => {
    if (closing) setImmediate(() => app.server.closeIdleConnections());
  });

  app.setErrorHandler((err: FastifyError, request, reply) => {
    const body = renderError(err, String(request.id));
    if (body.statusCode >= 500) request.log.error({ err }, 'request failed');
    else request.log.info({ err: { code: err.code, message: err.message } }, 'request rejected');
    // As Fastify's own handler does: an error may carry headers (e.g. Retry-After on a 503).
    const headers = (err as { headers?: Record<string, string> }).headers;
    if (headers && body.statusCode !== 500) reply.headers(headers);
    return reply.code(body.statusCode).send(body);
  });

  app.setNotFoundHandler({}, (request, reply) => {
    const path = request.url.split('?')[0];
    return reply.code(404).send({
      statusCode: 404,
      code: 'ROUTE_NOT_FOUND',
      error: STATUS_CODES[404]!,
      message: `Route ${request.method} ${path} not found`,
    } satisfies ErrorResponse);
  });

  if (opts.underPressure !== false) {
    await app.register(underPressure, {
      // Only a stalled loop sheds load: utilization near 1 is normal for a busy service on few cores.
      maxEventLoopDelay: 1000,
      retryAfter: 10,
      exposeStatusRoute: false,
      ...opts.underPressure,
    });
  }

  await app.register(metricsPlugin, { name: opts.name, defaultMetrics: opts.defaultMetrics ?? true });
  if (opts.docs !== false) await app.register(docsPlugin, { name: opts.name, version: opts.version });
  await app.register(healthPlugin, { name: opts.name, version: opts.version });

  return app;
}
