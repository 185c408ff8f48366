import type { FastifyPluginAsync } from 'fastify';
import { agentRoutes } from './agents.js';
import { conversationRoutes } from './conversations.js';
import type { RouteDeps } from './deps.js';
import { memoryRoutes } from './memory.js';
import { messageRoutes } from './messages.js';

/** Every route of the service. */
export const routes: FastifyPluginAsync<RouteDeps> = async (app, deps) => {
  await app.register(agentRoutes, deps);
  await app.register(conversationRoutes, deps);
  await app.register(messageRoutes, deps);
  await app.register(memoryRoutes, deps);
};
