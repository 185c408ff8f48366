/** Wire types shared with retrieval-proxy (POST /api/v1/context) and the stored shapes of this service. */

export type FilterValue = string | number | boolean | Array<string | number | boolean>;
export type Filters = Record<string, FilterValue>;

export interface ContextRequest {
  query: string;
  limit?: number;
  filters?: Filters;
  scoreThreshold?: number;
  maxChars?: number;
}

export interface ContextSection {
  documentId: string;
  title: string;
  chunkIndex: number;
  text: string;
  score: number;
}

export interface Citation {
  id: number;
  documentId: string;
  title: string;
  source?: string;
  chunkIndex: number;
}

export interface ContextResponse {
  query: string;
  sections: ContextSection[];
  citations: Citation[];
  text: string;
  truncated: boolean;
}

export interface AgentSettings {
  temperature: number;
  maxContextChars: number;
  contextLimit: number;
  filters?: Filters;
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
