import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { freePort } from '@aicache/test-redis';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { embeddingCacheKey } from '../src/domain/embedding-service.js';
import { hashEmbed } from '../src/providers/local-hash.js';
import { OpenAIEmbeddingProvider } from '../src/providers/openai.js';
import { startFakeOpenAI, testEnv, type FakeOpenAI, type TestEnv } from './helpers.js';

const DB = 4;
const MODEL = 'fake-embed-small';
const KEY = 'sk-test-secret-key';
let env: TestEnv;
let fake: FakeOpenAI;
let app: FastifyInstance;

interface EmbeddingsBody {
  data: Array<{ index: number; embedding: number[] }>;
  model: string;
}
/** The OpenAI-shaped error the embeddings route answers. */
interface ErrorBody {
  error: { type: string; code: string; message: string };
}

function post(body: unknown, target = app) {
  return target.inject({ method: 'POST', url: '/api/v1/embeddings', payload: body as object });
}

beforeAll(async () => {
  fake = await startFakeOpenAI({ dims: 8, model: MODEL });
  env = await testEnv(DB, {
    EMBEDDINGS_BASE_URL: fake.url,
    EMBEDDINGS_API_KEY: KEY,
    EMBEDDINGS_MODEL: MODEL,
    EMBEDDINGS_BATCH_SIZE: '4',
    EMBEDDINGS_TIMEOUT_MS: '5000',
  });
  app = await buildApp(env.config, { logger: false, underPressure: false, adminRateLimit: false });
});

afterAll(async () => {
  await app?.close();
  await fake?.close();
  await env?.close();
});

beforeEach(() => {
  fake.mode = 'ok';
  fake.requests.length = 0;
});

describe('OpenAI-compatible provider', () => {
  it('is the default model when EMBEDDINGS_BASE_URL is set, sends the key and splits misses into batches', async () => {
    const inputs = Array.from({ length: 10 }, (_, i) => `remote text ${i}`);
    const res = await post({ input: inputs });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-cache']).toBe('miss');
    const body = res.json<EmbeddingsBody>();
    expect(body.model).toBe(MODEL);

    expect(fake.requests.map((r) => r.input.length)).toEqual([4, 4, 2]);
    expect(fake.requests.every((r) => r.authorization === `Bearer ${KEY}`)).toBe(true);
    expect(fake.requests.every((r) => r.model === MODEL)).toBe(true);
    expect(fake.requests.flatMap((r) => r.input)).toEqual(inputs);

    // The fake answers in reverse order with indices: vectors must still line up with inputs.
    body.data.forEach((d, i) => {
      expect(d.index).toBe(i);
      expect(d.embedding).toEqual(Array.from(hashEmbed(inputs[i]!, 8)));
    });

    const key = app.cache.category('embeddings').key(embeddingCacheKey(MODEL, inputs[0]!));
    expect(await env.inspect.strlen(key)).toBeGreaterThanOrEqual(4 * 8);
    expect(await env.inspect.strlen(key)).toBeLessThanOrEqual(4 * 8 + 16);

    fake.requests.length = 0;
    const again = await post({ input: inputs });
    expect(again.headers['x-cache']).toBe('hit');
    expect(fake.requests).toHaveLength(0);
  });

  it('keeps the built-in model available by name', async () => {
    const res = await post({ model: 'local-hash-384', input: 'local still works' });
    expect(res.statusCode).toBe(200);
    expect(res.json<EmbeddingsBody>().data[0]!.embedding).toHaveLength(384);
    expect(fake.requests).toHaveLength(0);
  });

  it.each([
    ['malformed', /malformed response: item \d+ has no embedding array/],
    ['wrong-count', /expected 3 embeddings, got 2/],
    ['wrong-dims', /9 dimensions, expected 8/],
    ['not-json', /not JSON/],
    ['unauthorized', /HTTP 401: Incorrect API key provided/],
  ] as const)('answers 502 EMBEDDINGS_PROVIDER_ERROR when the provider answers %s, and caches nothing', async (mode, message) => {
    fake.mode = mode;
    const inputs = [`${mode} a`, `${mode} b`, `${mode} c`];
    const res = await post({ input: inputs });
    expect(res.statusCode).toBe(502);
    const err = res.json<ErrorBody>().error;
    expect(err).toMatchObject({ type: 'server_error', code: 'embeddings_provider_error' });
    expect(err.message).toMatch(message);
    expect(err.message).not.toContain(KEY);
    for (const input of inputs) {
      expect(await env.inspect.exists(app.cache.category('embeddings').key(embeddingCacheKey(MODEL, input)))).toBe(0);
    }
  });

  it('fails file processing with 502 when the provider fails, caching no result', async () => {
    fake.mode = 'malformed';
    const text = 'a document the provider cannot embed';
    const res = await app.inject({ method: 'POST', url: '/api/v1/process/text', payload: { text } });
    expect(res.statusCode).toBe(502);
    // Not an OpenAI-compatible route: the stack's own error shape.
    expect(res.json<{ code: string }>().code).toBe('EMBEDDINGS_PROVIDER_ERROR');
    fake.mode = 'ok';
    const retry = await app.inject({ method: 'POST', url: '/api/v1/process/text', payload: { text } });
    expect(retry.statusCode).toBe(200);
    expect(retry.headers['x-cache']).toBe('miss');
    expect(retry.json()).toMatchObject({ model: MODEL, dimensions: 8, chunkCount: 1 });
  });

  it('answers 503 when the provider says it is overloaded', async () => {
    fake.mode = 'overloaded';
    const res = await post({ input: 'overloaded now' });
    expect(res.statusCode).toBe(503);
    expect(res.json<ErrorBody>().error.code).toBe('embeddings_provider_unavailable');
  });

  it('answers 503 quickly when the provider is unreachable', async () => {
    const port = await freePort();
    const config = loadConfig({
      ...Object.fromEntries(Object.entries(env.config).map(([k, v]) => [k, String(v)])),
      EMBEDDINGS_BASE_URL: `http://127.0.0.1:${port}/v1`,
    });
    const down = await buildApp(config, { logger: false, underPressure: false, adminRateLimit: false });
    try {
      const res = await post({ input: 'nobody listens' }, down);
      expect(res.statusCode).toBe(503);
      const err = res.json<ErrorBody>().error;
      expect(err.code).toBe('embeddings_provider_unavailable');
      expect(err.message).toMatch(/ECONNREFUSED/);
    } finally {
      await down.close();
    }
  });

  it('describes the model from /models/<id> plus the learned dimensions', async () => {
    const res = await app.inject({ method: 'GET', url: `/api/v1/models/${MODEL}` });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ id: MODEL, object: 'model', provider: 'openai', dimensions: 8, max_input_chars: 32768 });
    expect(res.json<{ description: string }>().description).toContain('owned by fake-lab');
  });
});

describe('OpenAIEmbeddingProvider on its own', () => {
  it('learns the dimensions with a probe when asked for metadata first', async () => {
    const p = new OpenAIEmbeddingProvider({ baseUrl: fake.url, model: MODEL, batchSize: 16, timeoutMs: 5000, maxInputChars: 1000 });
    try {
      expect(p.describe().dimensions).toBeNull();
      const meta = await p.loadMetadata();
      expect(meta.dimensions).toBe(8);
      expect(p.dimensions).toBe(8);
      expect(fake.requests.at(-1)?.authorization).toBeUndefined();
    } finally {
      await p.close();
    }
  });

  it('rejects vectors of another length than EMBEDDINGS_DIMENSIONS', async () => {
    const p = new OpenAIEmbeddingProvider({ baseUrl: fake.url, model: MODEL, dimensions: 16, batchSize: 16, timeoutMs: 5000, maxInputChars: 1000 });
    try {
      await expect(p.embed(['x'])).rejects.toMatchObject({ statusCode: 502, message: expect.stringMatching(/8 dimensions, expected 16/) });
    } finally {
      await p.close();
    }
  });
});
