import { request, type Dispatcher } from 'undici';
import { classifyNetworkError, isUnavailable, type NetworkFailure } from '@aicache/service-kit';
import { LlmProviderError, LlmProviderUnavailable } from '../errors.js';
import { clip } from '../domain/text.js';
import { citedNumbers, type ChatProvider, type ProviderReply, type ReplyInput } from './types.js';

export interface OpenAiCompatibleOptions {
  /** e.g. https://api.openai.com/v1 — `/chat/completions` is appended. */
  baseUrl: string;
  apiKey?: string;
  model: string;
  timeoutMs: number;
  /** How many recent memory items go into the prompt. */
  memoryItems?: number;
  dispatcher?: Dispatcher;
}

interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

const MEMORY_ITEM_CHARS = 2000;

/** Any server speaking the OpenAI chat completions API (OpenAI, vLLM, Ollama, llama.cpp, LiteLLM...). */
export class OpenAiCompatibleProvider implements ChatProvider {
  readonly id = 'openai-compatible';
  readonly #url: string;
  readonly #opts: OpenAiCompatibleOptions;

  constructor(opts: OpenAiCompatibleOptions) {
    this.#opts = opts;
    this.#url = `${opts.baseUrl.replace(/\/+$/, '')}/chat/completions`;
  }

  buildMessages({ agent, memory, context, message }: ReplyInput): ChatMessage[] {
    const sources = context.length
      ? context
          .map(({ citation: c, text }) => `[${c.id}] ${c.title} (document ${c.documentId}, chunk ${c.chunkIndex})\n${text}`)
          .join('\n\n')
      : '(no relevant documents were found)';
    const system =
      `${agent.instructions}\n\n` +
      'Answer using the numbered sources below. Cite every fact with its source number in square brackets, e.g. [1]. ' +
      'If the sources do not contain the answer, say so.\n\n' +
      `Sources:\n${sources}`;
    const recent = memory.slice(-(this.#opts.memoryItems ?? 20)).map<ChatMessage>((m) => ({
      role: m.role,
      content: clip(m.content, MEMORY_ITEM_CHARS),
    }));
    return [{ role: 'system', content: system }, ...recent, { role: 'user', content: message }];
  }

  async reply(input: ReplyInput): Promise<ProviderReply> {
    const body = {
      model: this.#opts.model,
      temperature: input.agent.settings.temperature,
      messages: this.buildMessages(input),
    };
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
    if (this.#opts.apiKey) headers.authorization = `Bearer ${this.#opts.apiKey}`;
    if (input.requestId) headers['x-request-id'] = input.requestId;

    const timeout = AbortSignal.timeout(this.#opts.timeoutMs);
    const failed = (err: unknown, status?: number) => {
      const failure = classifyNetworkError(err, { timeoutMs: this.#opts.timeoutMs, timedOut: timeout.aborted });
      return providerError(failure, status);
    };
    let res: Dispatcher.ResponseData;
    try {
      res = await request(this.#url, {
        method: 'POST',
        headers,
        body: JSON.stringify(body),
        headersTimeout: this.#opts.timeoutMs,
        bodyTimeout: this.#opts.timeoutMs,
        signal: timeout,
        ...(this.#opts.dispatcher ? { dispatcher: this.#opts.dispatcher } : {}),
      });
    } catch (err) {
      throw failed(err);
    }

    let payload: unknown;
    try {
      payload = await res.body.json();
    } catch (err) {
      throw failed(err, res.statusCode);
    }
    if (res.statusCode < 200 || res.statusCode >= 300) {
      throw new LlmProviderError(`status ${res.statusCode}: ${clip(errorMessage(payload), 300)}`);
    }
    const content = completionText(payload);
    if (content === undefined) throw new LlmProviderError('response has no choices[0].message.content');
    return { content, citationsUsed: citedNumbers(content, input.context) };
  }
}

function completionText(payload: unknown): string | undefined {
  const choices = (payload as { choices?: Array<{ message?: { content?: unknown } }> } | null)?.choices;
  const content = Array.isArray(choices) ? choices[0]?.message?.content : undefined;
  return typeof content === 'string' ? content : undefined;
}

function errorMessage(payload: unknown): string {
  const e = (payload as { error?: { message?: unknown } | string } | null)?.error;
  if (typeof e === 'string') return e;
  if (e && typeof e.message === 'string') return e.message;
  return 'no error message';
}

/** Down or too slow: 503, worth a retry later. Answered badly: 502. */
function providerError(failure: NetworkFailure, status?: number): Error {
  if (isUnavailable(failure)) return new LlmProviderUnavailable(failure.detail);
  return new LlmProviderError(status === undefined ? failure.detail : `status ${status}, unreadable body (${failure.detail})`);
}
