import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { typeboxValidatorCompiler } from '../lib/validator.js';
import { agentRoutes } from './agents.js';
import { conversationRoutes } from './conversations.js';
import type { RouteDeps } from './deps.js';
import { memoryRoutes } from './memory.js';
import { messageRoutes } from './messages.js';

/** Every route of the service, in one scope that validates with TypeBox (no body coercion). */
export const routes: FastifyPluginAsyncTypebox<RouteDeps> = async (app, deps) => {
  app.setValidatorCompiler(typeboxValidatorCompiler);
  await app.register(agentRoutes, deps);
  await app.register(conversationRoutes, deps);
  await app.register(messageRoutes, deps);
  await app.register(memoryRoutes, deps);
};
