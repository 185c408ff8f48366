import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { ConfigError } from '@aicache/service-kit';
import { buildApp, localModelIds } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { LOCAL_SEMANTIC_MODEL_ID, LocalSemanticProvider } from '../src/providers/local-semantic.js';
import { testEnv, type TestEnv } from './helpers.js';

const DB = 13;
let env: TestEnv;
let app: FastifyInstance;

beforeAll(async () => {
  env = await testEnv(DB, { EMBEDDINGS_LOCAL_MODELS: 'local-use-512,local-hash-384' });
  app = await buildApp(env.config, { logger: false, underPressure: false, adminRateLimit: false });
});

afterAll(async () => {
  await app?.close();
  await env?.close();
});

interface EmbeddingsBody {
  model: string;
  data: Array<{ embedding: number[]; index: number }>;
}

async function embed(input: string[], model?: string): Promise<EmbeddingsBody> {
  const res = await app.inject({ method: 'POST', url: '/api/v1/embeddings', payload: { input, ...(model ? { model } : {}) } });
  expect(res.statusCode, res.body).toBe(200);
  return res.json<EmbeddingsBody>();
}

const cosine = (a: number[], b: number[]): number => {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return dot / Math.sqrt(na * nb);
};

async function waitReady(): Promise<Record<string, { ok: boolean; detail?: string }>> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const res = await app.inject({ method: 'GET', url: '/ready' });
    const body = res.json<{ status: string; checks: Record<string, { ok: boolean; detail?: string }> }>();
    if (res.statusCode === 200 || Date.now() > deadline) return body.checks;
    expect(body.checks.model?.detail).toMatch(/local-use-512 is loading/);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('the semantic local model (local-use-512)', () => {
  it('is ready once loaded, and says what the load cost', async () => {
    const checks = await waitReady();
    expect(checks.model).toMatchObject({ ok: true });
    expect(checks.model!.detail).toMatch(/^local-use-512 loaded in \d+ ms \(\+\d+ MB\)$/);
  });

  it('is the default model when listed first, with 512 dimensions, beside local-hash-384', async () => {
    const list = (await app.inject({ method: 'GET', url: '/api/v1/models' })).json<{ data: Array<{ id: string; dimensions: number }> }>();
    expect(list.data.map((m) => [m.id, m.dimensions])).toEqual([
      [LOCAL_SEMANTIC_MODEL_ID, 512],
      ['local-hash-384', 384],
    ]);
    const body = await embed(['hello']);
    expect(body.model).toBe(LOCAL_SEMANTIC_MODEL_ID);
    expect(body.data[0]!.embedding).toHaveLength(512);
  });

  it('places texts of the same meaning together where the lexical model cannot', async () => {
    const texts = ['how do I keep a cat healthy', 'Caring for your kitten: food, vaccines and regular visits to the vet', 'Stock markets fell sharply after the interest rate decision'];
    const semantic = (await embed(texts)).data.map((d) => d.embedding);
    const lexical = (await embed(texts, 'local-hash-384')).data.map((d) => d.embedding);
    const s = { related: cosine(semantic[0]!, semantic[1]!), unrelated: cosine(semantic[0]!, semantic[2]!) };
    const l = { related: cosine(lexical[0]!, lexical[1]!), unrelated: cosine(lexical[0]!, lexical[2]!) };
    expect(s.related).toBeGreaterThan(0.4);
    expect(s.related - s.unrelated).toBeGreaterThan(0.3);
    // The question and the passage share no word: to the hashing model they are as far apart as the unrelated pair.
    expect(l.related - l.unrelated).toBeLessThan(0.1);
  });

  it('gives a text the same vector alone and in a batch, and serves it again from the cache', async () => {
    const texts = Array.from({ length: 70 }, (_, i) => `note ${i}: the ${['river', 'mountain', 'city', 'forest'][i % 4]} at dawn`);
    const provider = new LocalSemanticProvider();
    try {
      const [alone] = await provider.embed([texts[41]!]);
      const batch = await provider.embed(texts);
      expect(cosine([...batch[41]!], [...alone!])).toBeGreaterThan(0.99999);
    } finally {
      await provider.close();
    }
    const first = (await embed(texts)).data;
    expect(first.map((d) => d.index)).toEqual(texts.map((_, i) => i));
    const hitsBefore = app.cache.counters().embeddings!.hits;
    const again = (await embed(texts)).data;
    expect(app.cache.counters().embeddings!.hits - hitsBefore).toBe(70);
    expect(again.map((d) => d.embedding)).toEqual(first.map((d) => d.embedding));
  });

  it('embeds in its own thread: the event loop stays free while a large batch runs', async () => {
    const texts = Array.from({ length: 256 }, (_, i) => `sentence ${i} about ${['weather', 'cooking', 'music', 'travel'][i % 4]} and a few more words ${i * 7}`);
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    const started = performance.now();
    await embed(texts);
    const took = performance.now() - started;
    delay.disable();
    const maxLagMs = delay.max / 1e6;
    console.log(`256 texts embedded in ${took.toFixed(0)} ms; longest event-loop delay meanwhile ${maxLagMs.toFixed(0)} ms`);
    // The bound at which the service would start shedding load (under-pressure's maxEventLoopDelay).
    expect(maxLagMs).toBeLessThan(1000);
  });

  it('refuses an unknown model name in EMBEDDINGS_LOCAL_MODELS, naming the variable', () => {
    let err: unknown;
    try {
      localModelIds(loadConfig({ EMBEDDINGS_LOCAL_MODELS: 'local-use-512,minilm' }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/EMBEDDINGS_LOCAL_MODELS: must list one or more of local-use-512, local-hash-384, comma-separated \(unknown: "minilm"\)/);
  });
});
