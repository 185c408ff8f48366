import { trace } from '@opentelemetry/api';
import fp from 'fastify-plugin';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, RouteOptions } from 'fastify';
import type { TSchema } from 'typebox';

export interface DocsOptions {
  name: string;
  version: string;
  description?: string;
}

/** The bearer scheme every guarded operation names (the auth plugin and the cache admin routes add it). */
export const ADMIN_SECURITY_SCHEME = 'bearerAuth';

/** Path prefix left out of derived operationIds: every API route has it, and it says nothing. */
const API_PREFIX = /^\/api\/v\d+(?=\/|$)/;

const camel = (word: string): string =>
  word
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w[0]!.toUpperCase() + w.slice(1))
    .join('');

/**
 * `GET /api/v1/agents/:agentId/conversations` -> `getAgentsByAgentIdConversations`: the method, then the
 * path's words, each parameter as `By<Name>`. Stable as long as the route is, and readable in a client.
 */
export function operationIdOf(method: string, url: string): string {
  const words = url
    .replace(API_PREFIX, '')
    .split('/')
    .filter(Boolean)
    .map((segment) => (segment.startsWith(':') ? `By${camel(segment.slice(1))}` : segment === '*' ? 'ByPath' : camel(segment)));
  return method.toLowerCase() + words.join('');
}

type RouteSchema = { operationId?: string; hide?: boolean };

/**
 * Every documented route gets an operationId (its own, or derived from method and URL) so generated clients
 * have method names; two routes with the same id stop the service at boot instead of making a broken document.
 */
function addOperationIds(app: FastifyInstance): void {
  const seen = new Map<string, string>();
  app.addHook('onRoute', (route: RouteOptions) => {
    const schema = (route.schema ?? {}) as RouteSchema;
    if (schema.hide || typeof route.method !== 'string' || route.method === 'HEAD') return;
    const id = schema.operationId ?? operationIdOf(route.method, route.url);
    const where = `${route.method} ${route.url}`;
    const other = seen.get(id);
    if (other) throw new Error(`operationId '${id}' of ${where} is already used by ${other}: set schema.operationId on one of them`);
    seen.set(id, where);
    route.schema = { ...route.schema, operationId: id };
  });
}

type JsonObject = { properties?: Record<string, { default?: unknown }>; required?: string[] };

/**
 * A request property with a default is filled in by the server's validator (Ajv `useDefaults`), so a
 * client may leave it out: the document must not list it as required, or generated clients demand it.
 */
function defaultsOptional<T>(schema: T): T {
  const s = schema as JsonObject | undefined;
  if (!s?.properties || !Array.isArray(s.required)) return schema;
  const required = s.required.filter((name) => s.properties?.[name]?.default === undefined);
  return required.length === s.required.length ? schema : ({ ...s, required } as T);
}

type DocumentedSchema = Record<string, unknown> & { querystring?: unknown; body?: unknown; headers?: unknown };

/** Only the document changes: the route keeps its schema for validation. */
function forClients(schema: DocumentedSchema | undefined): DocumentedSchema | undefined {
  if (!schema) return schema;
  const out = { ...schema };
  for (const part of ['querystring', 'body', 'headers'] as const) if (out[part]) out[part] = defaultsOptional(out[part]);
  return out;
}

/**
 * Sends JSON that is already bytes (a cached answer, replayed without re-serialization) or a stream of them, with
 * the `x-cache` outcome its route declares with withCacheHeader.
 */
export function sendCachedJson(reply: FastifyReply, outcome: string, body: Buffer | string | Readable): FastifyReply {
  // On the route's span when tracing is on (a no-op otherwise), so a trace shows which hop the cache answered.
  trace.getActiveSpan()?.setAttribute('cache.outcome', outcome);
  return reply.header('x-cache', outcome).type('application/json; charset=utf-8').send(body);
}

/** A response schema that also documents the `x-cache` header the route sends with it. */
export function withCacheHeader<T extends TSchema>(schema: T, values: readonly string[] = ['hit', 'miss']): T {
  return {
    ...schema,
    headers: {
      'x-cache': {
        type: 'string',
        enum: [...values],
        description: 'Whether the cache answered: ' + values.join(', '),
      },
    },
  };
}

/** OpenAPI 3 from the route schemas, UI at /docs, JSON at /docs/json. Registered before any route so every route shows up. */
async function docs(app: FastifyInstance, opts: DocsOptions): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: opts.name, version: opts.version, ...(opts.description ? { description: opts.description } : {}) },
      // Relative: the service that serves this document, wherever it is reached (OpenAPI 3.0 §4.7.5).
      servers: [{ url: '/', description: `this ${opts.name}` }],
      // Each guarded operation names the bearer scheme; /health, /ready, /metrics and /docs do not.
      security: [],
      components: {
        securitySchemes: {
          [ADMIN_SECURITY_SCHEME]: {
            type: 'http',
            scheme: 'bearer',
            description: 'Authorization: Bearer <API key | session token | service token>; the admin routes also take CACHE_ADMIN_TOKEN',
          },
        },
      },
    },
    transform: ({ schema, url }) => ({ schema: forClients(schema as DocumentedSchema | undefined) as typeof schema, url }),
  });
  addOperationIds(app);
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });
}

export const docsPlugin = fp(docs, { name: '@aicache/service-kit/docs', fastify: '5.x' });
