import { randomUUID } from 'node:crypto';
import { errors } from '@aicache/service-kit';
import type { AgentStore } from './store.js';
import { DEFAULT_SETTINGS, type Agent, type AgentSettings } from './types.js';

export interface AgentInput {
  name: string;
  instructions?: string;
  settings?: Partial<AgentSettings>;
}

/** Settings with the given ones over `base`; empty filters are no filters. */
function mergeSettings(base: AgentSettings, given: Partial<AgentSettings> | undefined): AgentSettings {
  const settings = { ...base, ...given };
  if (settings.filters && Object.keys(settings.filters).length === 0) delete settings.filters;
  return settings;
}

/**
 * Agents: creation with the default settings, changes setting by setting, deletion with everything they own.
 * Every call acts within one tenant: another tenant's agent is not found, exactly like an id never used.
 */
export class AgentService {
  constructor(private readonly store: AgentStore) {}

  async create(tenant: string, input: AgentInput): Promise<Agent> {
    if (input.name.trim().length === 0) throw errors.BadRequest('name must not be blank');
    const agent: Agent = {
      id: randomUUID(),
      name: input.name,
      instructions: input.instructions ?? '',
      settings: mergeSettings(DEFAULT_SETTINGS, input.settings),
      createdAt: new Date().toISOString(),
    };
    await this.store.createAgent(tenant, agent);
    return agent;
  }

  list(tenant: string, limit: number, offset: number) {
    return this.store.listAgents(tenant, limit, offset);
  }

  async get(tenant: string, id: string): Promise<Agent> {
    const agent = await this.store.getAgent(tenant, id);
    if (!agent) throw errors.NotFound('agent', id);
    return agent;
  }

  async update(tenant: string, id: string, change: Partial<AgentInput>): Promise<Agent> {
    const { name, instructions, settings } = change;
    if (name !== undefined && name.trim().length === 0) throw errors.BadRequest('name must not be blank');
    const agent = await this.store.updateAgent(tenant, id, (current) => ({
      ...current,
      ...(name !== undefined ? { name } : {}),
      ...(instructions !== undefined ? { instructions } : {}),
      settings: mergeSettings(current.settings, settings),
    }));
    if (!agent) throw errors.NotFound('agent', id);
    return agent;
  }

  async memory(tenant: string, id: string) {
    await this.get(tenant, id);
    return this.store.readMemory(tenant, id);
  }

  async clearMemory(tenant: string, id: string): Promise<void> {
    await this.get(tenant, id);
    await this.store.clearMemory(tenant, id);
  }

  async delete(tenant: string, id: string): Promise<void> {
    if (!(await this.store.deleteAgent(tenant, id))) throw errors.NotFound('agent', id);
  }
}
