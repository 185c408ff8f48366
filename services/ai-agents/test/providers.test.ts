import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContextSection } from '@aicache/contracts';
import { DEFAULT_SETTINGS, type Agent } from '../src/domain/types.js';
import { BuiltinExtractiveProvider, createProvider, OpenAiCompatibleProvider } from '../src/providers/index.js';
import { deadUrl, SECTIONS, useFixture } from './helpers.js';

const agent: Agent = { id: 'a', name: 'Docs', instructions: 'You are the docs assistant. Be precise.', settings: DEFAULT_SETTINGS, createdAt: new Date(0).toISOString() };
const context: ContextSection[] = SECTIONS.map((s, i) => ({
  citation: { id: i + 1, documentId: s.documentId, title: s.title, chunkIndex: s.chunkIndex },
  text: s.text,
  score: s.score,
}));

describe('builtin-extractive', () => {
  const p = new BuiltinExtractiveProvider();

  it('quotes the sentences that overlap the question, with citation markers', async () => {
    const r = await p.reply({ agent, memory: [], context, message: 'Which policy evicts the least recently used keys?' });
    expect(r.content).toContain('allkeys-lru policy evicts the least recently used keys');
    expect(r.content).toContain('[2]');
    expect(r.citationsUsed).toEqual([2]);
    expect(r.content).toMatch(/built-in responder/);
    expect(r.content).toMatch(/no language model/);
  });

  it('says it found nothing when there is no context', async () => {
    const r = await p.reply({ agent, memory: [], context: [], message: 'anything' });
    expect(r.content).toMatch(/found nothing relevant/);
    expect(r.citationsUsed).toEqual([]);
  });

  it('falls back to the best passage when no word matches', async () => {
    const r = await p.reply({ agent, memory: [], context, message: 'zzz qqq' });
    expect(r.citationsUsed).toEqual([1]);
    expect(r.content).toMatch(/nearest passage/);
  });

  it('is the default provider', () => {
    expect(createProvider({ LLM_MODEL: 'm', LLM_TIMEOUT_MS: 1000 }).id).toBe('builtin-extractive');
  });
});

interface Seen {
  authorization: string | undefined;
  body: { model: string; temperature: number; messages: Array<{ role: string; content: string }> };
}

/** A real HTTP server speaking the OpenAI chat completions API. */
async function startFakeLlm(): Promise<{ url: string; seen: Seen[]; mode: { fail?: number; garbage?: boolean }; app: FastifyInstance }> {
  const app = Fastify({ logger: false });
  const seen: Seen[] = [];
  const mode: { fail?: number; garbage?: boolean } = {};
  app.post('/v1/chat/completions', async (req, reply) => {
    seen.push({ authorization: req.headers.authorization, body: req.body as Seen['body'] });
    if (mode.fail) return reply.code(mode.fail).send({ error: { message: 'model overloaded', type: 'server_error' } });
    if (mode.garbage) return { object: 'nothing' };
    return {
      id: 'chatcmpl-1',
      object: 'chat.completion',
      model: (req.body as Seen['body']).model,
      choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: 'AOF logs every write [1]; see also [7].' } }],
      usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
    };
  });
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  return { url: `${address}/v1`, seen, mode, app };
}

describe('openai-compatible provider', () => {
  let llm: Awaited<ReturnType<typeof startFakeLlm>>;
  beforeAll(async () => {
    llm = await startFakeLlm();
  });
  afterAll(async () => llm?.app.close());

  it('sends instructions, numbered context, memory and the message with the bearer key', async () => {
    const p = new OpenAiCompatibleProvider({ baseUrl: llm.url, apiKey: 'sk-test-123', model: 'test-model', timeoutMs: 5000 });
    const memory = [{ role: 'user' as const, content: 'earlier question', conversationId: 'c', at: new Date().toISOString() }];
    const r = await p.reply({ agent: { ...agent, settings: { ...DEFAULT_SETTINGS, temperature: 0.7 } }, memory, context, message: 'How does AOF work?' });
    expect(r.content).toBe('AOF logs every write [1]; see also [7].');
    expect(r.citationsUsed).toEqual([1]);

    const req = llm.seen.at(-1)!;
    expect(req.authorization).toBe('Bearer sk-test-123');
    expect(req.body.model).toBe('test-model');
    expect(req.body.temperature).toBe(0.7);
    const [system, ...rest] = req.body.messages;
    expect(system!.role).toBe('system');
    expect(system!.content).toContain('You are the docs assistant.');
    expect(system!.content).toContain('[1] Redis persistence');
    expect(system!.content).toContain('append only file (AOF) logs every write operation');
    expect(system!.content).toContain('[2] Eviction policies');
    expect(rest).toEqual([
      { role: 'user', content: 'earlier question' },
      { role: 'user', content: 'How does AOF work?' },
    ]);
  });

  it('maps an error status to LLM_PROVIDER_ERROR 502 and an unreachable server to 503', async () => {
    const p = new OpenAiCompatibleProvider({ baseUrl: llm.url, model: 'm', timeoutMs: 5000 });
    llm.mode.fail = 500;
    await expect(p.reply({ agent, memory: [], context, message: 'x' })).rejects.toMatchObject({ code: 'LLM_PROVIDER_ERROR', statusCode: 502 });
    llm.mode.fail = undefined;
    llm.mode.garbage = true;
    await expect(p.reply({ agent, memory: [], context, message: 'x' })).rejects.toMatchObject({ code: 'LLM_PROVIDER_ERROR', statusCode: 502 });
    llm.mode.garbage = false;

    const dead = new OpenAiCompatibleProvider({ baseUrl: await deadUrl(), model: 'm', timeoutMs: 5000 });
    await expect(dead.reply({ agent, memory: [], context, message: 'x' })).rejects.toMatchObject({ code: 'LLM_PROVIDER_UNAVAILABLE', statusCode: 503 });
  });

  it('a model server that sends its headers and then stalls is unavailable (503), not a bad answer (502)', async () => {
    // Classified by the kit: a body that does not arrive in time is a timeout, like a server that never answers.
    const stalling = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"choices": [');
    });
    await new Promise<void>((r) => stalling.listen(0, '127.0.0.1', r));
    const { port } = stalling.address() as AddressInfo;
    const p = new OpenAiCompatibleProvider({ baseUrl: `http://127.0.0.1:${port}`, model: 'm', timeoutMs: 300 });
    try {
      await expect(p.reply({ agent, memory: [], context, message: 'x' })).rejects.toMatchObject({
        code: 'LLM_PROVIDER_UNAVAILABLE',
        statusCode: 503,
        message: expect.stringMatching(/no answer within 300 ms/),
      });
    } finally {
      stalling.closeAllConnections();
      await new Promise((r) => stalling.close(r));
    }
  });

  describe('through the app', () => {
    // A function: llm is set by the outer describe's hook, which runs first.
    const f = useFixture(7, { env: () => ({ LLM_BASE_URL: llm.url, LLM_API_KEY: 'sk-app-456', LLM_MODEL: 'app-model' }) });

    async function conversation() {
      const a = (await f.app.inject({ method: 'POST', url: '/api/v1/agents', payload: { name: 'LLM', instructions: 'Cite sources.' } })).json();
      return (await f.app.inject({ method: 'POST', url: `/api/v1/agents/${a.id}/conversations`, payload: {} })).json();
    }

    it('answers with the model reply and the cited documents', async () => {
      const conv = await conversation();
      const res = await f.app.inject({ method: 'POST', url: `/api/v1/conversations/${conv.id}/messages`, payload: { content: 'How does AOF work?' } });
      expect(res.statusCode).toBe(201);
      expect(res.json()).toMatchObject({ provider: 'openai-compatible', reply: { content: 'AOF logs every write [1]; see also [7].' } });
      expect(res.json().citations).toEqual([{ id: 1, documentId: 'doc-persistence', title: 'Redis persistence', source: 'docs/doc-persistence.md', chunkIndex: 0 }]);
      const req = llm.seen.at(-1)!;
      expect(req.authorization).toBe('Bearer sk-app-456');
      expect(req.body.messages[0]!.content).toContain('Cite sources.');
      expect(req.body.messages[0]!.content).toContain('RDB persistence takes point-in-time snapshots');
    });

    it('a failing model is a 502 LLM_PROVIDER_ERROR and the user message is kept', async () => {
      const conv = await conversation();
      llm.mode.fail = 503;
      try {
        const res = await f.app.inject({ method: 'POST', url: `/api/v1/conversations/${conv.id}/messages`, payload: { content: 'Still there?' } });
        expect(res.statusCode).toBe(502);
        expect(res.json().code).toBe('LLM_PROVIDER_ERROR');
        expect(res.json().message).not.toContain('sk-app-456');
      } finally {
        llm.mode.fail = undefined;
      }
      const history = (await f.app.inject({ method: 'GET', url: `/api/v1/conversations/${conv.id}/messages` })).json();
      expect(history.items.map((m: { content: string }) => m.content)).toEqual(['Still there?']);
    });
  });
});
