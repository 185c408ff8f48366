import fp from 'fastify-plugin';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';

export interface DocsOptions {
  name: string;
  version: string;
  description?: string;
}

/** OpenAPI 3 from the route schemas, UI at /docs, JSON at /docs/json. Registered before any route so every route shows up. */
async function docs(app: FastifyInstance, opts: DocsOptions): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: opts.name, version: opts.version, ...(opts.description ? { description: opts.description } : {}) },
      components: {
        securitySchemes: {
          cacheAdmin: { type: 'http', scheme: 'bearer', description: 'Authorization: Bearer $CACHE_ADMIN_TOKEN' },
        },
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });
}

export const docsPlugin = fp(docs, { name: '@aicache/service-kit/docs', fastify: '5.x' });
