/** The stored shapes of this service. What crosses the wire to retrieval-proxy is in @aicache/contracts. */
import type { Citation, Filters } from '@aicache/contracts';

export interface AgentSettings {
  temperature: number;
  maxContextChars: number;
  contextLimit: number;
  /** Sent to retrieval-proxy as they are: validated with the proxy's own schema when set. */
  filters?: Filters;
  /** Hybrid ranking of the agent's context (sent to retrieval-proxy as `hybrid`); absent: the proxy's RETRIEVAL_HYBRID. */
  hybrid?: boolean;
  memoryMaxItems: number;
}

export interface Agent {
  id: string;
  name: string;
  instructions: string;
  settings: AgentSettings;
  createdAt: string;
}

export interface Conversation {
  id: string;
  agentId: string;
  title: string | null;
  createdAt: string;
}

export interface Message {
  id: string;
  role: 'user' | 'assistant';
  content: string;
  citations?: Citation[];
  createdAt: string;
}

export interface MemoryItem {
  role: 'user' | 'assistant';
  content: string;
  conversationId: string;
  at: string;
}

export const DEFAULT_SETTINGS: AgentSettings = {
  temperature: 0.2,
  maxContextChars: 4000,
  contextLimit: 5,
  memoryMaxItems: 50,
};
