import { BuiltinExtractiveProvider } from './builtin-extractive.js';
import { OpenAiCompatibleProvider } from './openai-compatible.js';
import type { ChatProvider } from './types.js';

export type { ChatProvider, ContextSource, ProviderReply, ReplyInput } from './types.js';
export { BuiltinExtractiveProvider } from './builtin-extractive.js';
export { OpenAiCompatibleProvider } from './openai-compatible.js';

export interface ProviderConfig {
  LLM_BASE_URL?: string;
  LLM_API_KEY?: string;
  LLM_MODEL: string;
  LLM_TIMEOUT_MS: number;
}

/** The OpenAI-compatible provider when LLM_BASE_URL is set, else the built-in extractive responder. */
export function createProvider(config: ProviderConfig): ChatProvider {
  if (config.LLM_BASE_URL) {
    return new OpenAiCompatibleProvider({
      baseUrl: config.LLM_BASE_URL,
      model: config.LLM_MODEL,
      timeoutMs: config.LLM_TIMEOUT_MS,
      ...(config.LLM_API_KEY ? { apiKey: config.LLM_API_KEY } : {}),
    });
  }
  return new BuiltinExtractiveProvider();
}
