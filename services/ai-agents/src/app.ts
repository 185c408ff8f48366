import { createService, registerAuth, PeerClient, registerRedis, stateReplication, type CreateServiceOptions, type ServiceApp } from '@aicache/service-kit';
import { serviceTokenHeaders } from '@aicache/auth';
import type { FastifyBaseLogger } from 'fastify';
import type { Redis } from 'ioredis';
import type { Config } from './config.js';
import { AgentService } from './domain/agent-service.js';
import { ConversationService } from './domain/conversation-service.js';
import { contextPeer, type ContextPeer, type ProxyCredentials } from './domain/retrieval.js';
import { AgentStore } from './domain/store.js';
import { createProvider, type ChatProvider } from './providers/index.js';
import type { RouteDeps } from './routes/deps.js';
import { routes } from './routes/index.js';

export const SERVICE = 'ai-agents';
export const VERSION = '0.1.0';

/**
 * ai-agents caches nothing: agents, conversations and agent memory are state. The cache plugin is there for the
 * admin routes every service has; GET /api/v1/cache/stats reports agent memory under `state`, not as a category.
 */
export const CATEGORIES = {};

/** Sliding TTL of agent memory when CACHE_TTL_AGENT_MEMORY is unset: 30 days. */
export const MEMORY_TTL_SECONDS = 2_592_000;

export interface BuildOverrides {
  /** Cache Redis client (kept open on close). */
  cacheClient?: Redis;
  /** State Redis client (kept open on close). */
  stateClient?: Redis;
  /** retrieval-proxy client; default a PeerClient on RETRIEVAL_PROXY_URL. */
  proxy?: ContextPeer & { ready?: () => Promise<boolean> };
  /** The headers each call to the default retrieval-proxy client carries for whom it acts; default a service token. */
  proxyCredentials?: ProxyCredentials;
  /** Chat provider; default from LLM_* settings (built-in extractive when LLM_BASE_URL is unset). */
  provider?: ChatProvider;
  logger?: false | FastifyBaseLogger;
  /** under-pressure options over the kit's, or false (tests on a busy machine). */
  underPressure?: CreateServiceOptions['underPressure'];
}

export async function buildApp(config: Config, overrides: BuildOverrides = {}): Promise<ServiceApp> {
  const app = await createService({
    name: SERVICE,
    version: VERSION,
    config,
    ...(overrides.logger !== undefined ? { logger: overrides.logger } : {}),
    ...(overrides.underPressure !== undefined ? { underPressure: overrides.underPressure } : {}),
  });

  try {
    // Before any route: every route but /health, /ready, /metrics and /docs needs a principal.
    const auth = await registerAuth(app, config, { service: SERVICE });
    const redis = await registerRedis(app, config, {
      cache: {
        service: SERVICE,
        categories: CATEGORIES,
        dbVariable: 'REDIS_DB_AI_AGENTS',
        defaultDb: 2,
        ...(overrides.cacheClient ? { client: overrides.cacheClient } : {}),
        // Read by GET /api/v1/cache/stats, which serves only after boot, when the store below exists.
        state: () => store.figures(),
      },
      state: {
        db: config.REDIS_DB_AI_AGENTS,
        ...(overrides.stateClient ? { client: overrides.stateClient } : {}),
      },
    });
    const store: AgentStore = new AgentStore(
      redis.state,
      config.CACHE_TTL_AGENT_MEMORY ?? MEMORY_TTL_SECONDS,
      SERVICE,
      config.STATE_TIMEOUT_MS,
      stateReplication(config, SERVICE, redis.state, app.log),
    );
    app.addHook('onClose', async () => store.calls.detach());

    let peer: ContextPeer & { ready?: () => Promise<boolean> };
    if (overrides.proxy) peer = overrides.proxy;
    else {
      const client = new PeerClient({
        name: 'retrieval-proxy',
        baseUrl: config.RETRIEVAL_PROXY_URL,
        timeoutMs: config.PEER_TIMEOUT_MS,
        retries: config.PEER_RETRIES,
      });
      app.addHook('onClose', async () => client.close());
      // The proxy is called with a short-lived service token naming the tenant and user this request acts for.
      peer = contextPeer(client, overrides.proxyCredentials ?? (({ principal }) => serviceTokenHeaders(auth.tokens, principal)));
    }

    const provider = overrides.provider ?? createProvider(config);
    if (!overrides.provider && provider.close) app.addHook('onClose', async () => provider.close?.());
    app.log.info({ provider: provider.id }, 'chat provider');

    const deps: RouteDeps = {
      agents: new AgentService(store),
      conversations: new ConversationService({ store, proxy: peer, provider }),
    };

    // Messages cannot be answered without context, so a dead proxy makes the service not ready.
    app.addReadinessCheck('retrieval-proxy', async () => {
      const ok = peer.ready ? await peer.ready() : true;
      return ok ? { ok } : { ok, detail: `no answer from ${config.RETRIEVAL_PROXY_URL}/health` };
    });

    await app.register(routes, deps);
    return app;
  } catch (err) {
    await app.close().catch(() => undefined);
    throw err;
  }
}
