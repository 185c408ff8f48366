import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import OpenAI, { APIError, BadRequestError, NotFoundError } from 'openai';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { hashEmbed } from '../src/providers/local-hash.js';
import { startFakeOpenAI, testEnv, type FakeOpenAI, type TestEnv } from './helpers.js';

// A remote model whose id has a slash, as Hugging Face ids do.
const REMOTE = 'BAAI/bge-small-en-v1.5';
const LOCAL = 'local-hash-384';

let env: TestEnv;
let fake: FakeOpenAI;
let app: FastifyInstance;
let url: string;
let client: OpenAI;
const ADMIN = 'admin-token-of-the-sdk-test';

/** A user and an API key with the write scope, made as an operator would, through the auth routes. */
async function apiKeyFor(app: FastifyInstance, username: string): Promise<string> {
  const admin = { authorization: `Bearer ${ADMIN}` };
  const user = await app.inject({ method: 'POST', url: '/api/v1/auth/users', headers: admin, payload: { username, password: 'a long enough password', tenant: 'sdk' } });
  expect(user.statusCode, user.body).toBe(201);
  const key = await app.inject({ method: 'POST', url: '/api/v1/auth/keys', headers: admin, payload: { name: 'openai-sdk', scopes: ['write'], userId: user.json().id } });
  expect(key.statusCode, key.body).toBe(201);
  return key.json().key as string;
}

beforeAll(async () => {
  fake = await startFakeOpenAI({ dims: 8, model: REMOTE });
  // Authentication on, as in production: the SDK sends its apiKey as a bearer token, and that is an API key of ours.
  env = await testEnv(12, { EMBEDDINGS_BASE_URL: fake.url, EMBEDDINGS_MODEL: REMOTE, EMBEDDINGS_DIMENSIONS: '8', AUTH_MODE: 'on', CACHE_ADMIN_TOKEN: ADMIN });
  app = await buildApp(env.config, { logger: false, underPressure: false, adminRateLimit: false });
  url = await app.listen({ host: '127.0.0.1', port: 0 });
  client = new OpenAI({ baseURL: `${url}/api/v1`, apiKey: await apiKeyFor(app, `sdk-${Date.now()}`), maxRetries: 0, timeout: 10_000 });
});

afterAll(async () => {
  await app?.close();
  await fake?.close();
  await env?.close();
});

/** What the official SDK caught: it only exposes the server's words when the body is OpenAI-shaped. */
async function caught(call: Promise<unknown>): Promise<APIError> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(APIError);
  return err as APIError;
}

describe('the official openai SDK against the worker', () => {
  it('is refused with a wrong API key: an OpenAI-shaped 401 the SDK reads as an authentication error', async () => {
    const wrong = new OpenAI({ baseURL: `${url}/api/v1`, apiKey: 'aik_not-a-key', maxRetries: 0, timeout: 10_000 });
    const err = await caught(wrong.embeddings.create({ model: LOCAL, input: 'hello' }));
    expect(err.status).toBe(401);
    expect(err.message).toMatch(/Invalid, expired or revoked credential/);
    expect((err.error as { type?: string }).type).toBe('authentication_error');
  });

  it('creates float embeddings', async () => {
    const res = await client.embeddings.create({ model: LOCAL, input: ['caching embeddings in redis', 'second input'], encoding_format: 'float' });
    expect(res.object).toBe('list');
    expect(res.model).toBe(LOCAL);
    expect(res.data.map((d) => d.index)).toEqual([0, 1]);
    expect(res.data[0]!.embedding).toEqual(Array.from(hashEmbed('caching embeddings in redis')));
    expect(res.usage.prompt_tokens).toBeGreaterThan(0);
  });

  it('creates base64 embeddings, asked for explicitly or by the SDK\'s own default', async () => {
    const explicit = await client.embeddings.create({ model: LOCAL, input: 'base64 through the sdk', encoding_format: 'base64' });
    const b64 = explicit.data[0]!.embedding as unknown as string;
    expect(typeof b64).toBe('string');
    const bytes = Buffer.from(b64, 'base64');
    const decoded = Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4));
    expect(decoded).toEqual(Array.from(hashEmbed('base64 through the sdk')));

    // No encoding_format: the SDK asks for base64 and decodes it into numbers itself.
    const byDefault = await client.embeddings.create({ model: LOCAL, input: 'base64 through the sdk' });
    expect(Array.from(byDefault.data[0]!.embedding)).toEqual(decoded);
  });

  it('embeds with the remote model whose id has a slash (the default model here)', async () => {
    const res = await client.embeddings.create({ model: REMOTE, input: 'remote input', encoding_format: 'float' });
    expect(res.model).toBe(REMOTE);
    expect(res.data[0]!.embedding).toEqual(Array.from(hashEmbed('remote input', 8)));
  });

  it('lists and retrieves models, each with created and owned_by', async () => {
    const list = await client.models.list();
    const models = list.data;
    expect(models.map((m) => m.id).sort()).toEqual([REMOTE, LOCAL].sort());
    for (const m of models) {
      expect(m.object).toBe('model');
      expect(Number.isInteger(m.created)).toBe(true);
      expect(typeof m.owned_by).toBe('string');
      expect(m.owned_by.length).toBeGreaterThan(0);
    }
    const local = await client.models.retrieve(LOCAL);
    expect(local).toMatchObject({ id: LOCAL, object: 'model', owned_by: 'ai-cache-stack' });
    // The SDK sends the slash percent-encoded: /models/BAAI%2Fbge-small-en-v1.5.
    const remote = await client.models.retrieve(REMOTE);
    expect(remote).toMatchObject({ id: REMOTE, object: 'model', owned_by: 'fake-lab', created: 1_700_000_000 });
  });

  it('shows the server\'s message on a 400, in err.message and err.error', async () => {
    const empty = await caught(client.embeddings.create({ model: LOCAL, input: '' }));
    expect(empty).toBeInstanceOf(BadRequestError);
    expect(empty.status).toBe(400);
    expect(empty.message).toBe('400 body/input must NOT have fewer than 1 characters, or body/input must be array');
    expect(empty.error).toEqual({
      message: 'body/input must NOT have fewer than 1 characters, or body/input must be array',
      type: 'invalid_request_error',
      param: 'input',
      code: 'validation_error',
    });

    const unknown = await caught(client.embeddings.create({ model: 'gpt-99', input: 'x' }));
    expect(unknown).toBeInstanceOf(BadRequestError);
    expect(unknown.message).toBe(`400 unknown model 'gpt-99'; available models: ${REMOTE}, ${LOCAL}`);
    expect(unknown).toMatchObject({ param: 'model', code: 'unknown_model', type: 'invalid_request_error' });
  });

  it('shows the server\'s message on a 404 and a 413', async () => {
    const missing = await caught(client.models.retrieve('no-such-model'));
    expect(missing).toBeInstanceOf(NotFoundError);
    expect(missing.message).toBe("404 model 'no-such-model' not found");
    expect(missing).toMatchObject({ code: 'model_not_found', param: 'model', type: 'invalid_request_error' });

    const tooMany = await caught(client.embeddings.create({ model: LOCAL, input: Array.from({ length: 2049 }, (_, i) => `x${i}`) }));
    expect(tooMany.status).toBe(413);
    expect(tooMany.message).toBe('413 input has 2049 items; one request takes at most 2048: split the batch; more goes to a background job: POST /api/v1/jobs/embeddings (up to 100000 inputs in 67108864 bytes)');
    expect(tooMany).toMatchObject({ code: 'body_too_large', param: 'input' });
  });
});

describe('error shapes over HTTP', () => {
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${client.apiKey}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it.each([
    ['POST', '/api/v1/embeddings', { input: 5 }, 400, 'input'],
    ['POST', '/api/v1/embeddings', '{"input": ', 400, null],
    ['POST', '/api/v1/embeddings', { input: 'x', temperature: 1 }, 400, 'temperature'],
    ['POST', '/api/v1/embeddings', { input: 'x', dimensions: 3 }, 400, 'dimensions'],
    ['GET', '/api/v1/models/no-such-model', undefined, 404, 'model'],
    ['GET', `/api/v1/models/${'m'.repeat(201)}`, undefined, 400, 'id'],
    ['GET', '/api/v1/models/a/b/c', undefined, 404, 'model'],
    // Not decodable: Fastify fails it before any route (frameworkErrors).
    ['GET', '/api/v1/models/%FF%FE', undefined, 400, null],
  ])('%s %s answers OpenAI\'s error object', async (method, path, body, status, param) => {
    const res = await call(method, path, body);
    expect(res.status).toBe(status);
    expect(Object.keys(res.body)).toEqual(['error']);
    const error = res.body.error as Record<string, unknown>;
    expect(Object.keys(error).sort()).toEqual(['code', 'message', 'param', 'type']);
    expect(typeof error.message).toBe('string');
    expect((error.message as string).length).toBeGreaterThan(5);
    expect(error.type).toBe('invalid_request_error');
    expect(error.param).toBe(param);
    expect(error.code).toMatch(/^[a-z_]+$/);
  });

  it('keeps the stack\'s error shape on the other routes', async () => {
    const res = await call('POST', '/api/v1/process/text', { text: '' });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ statusCode: 400, code: 'VALIDATION_ERROR', error: 'Bad Request' });
    const unknownRoute = await call('GET', '/api/v1/nothing-here');
    expect(unknownRoute.body).toMatchObject({ statusCode: 404, code: 'ROUTE_NOT_FOUND' });
    const badUrl = await call('GET', '/api/v1/cache/file/%FF%FE');
    expect(badUrl).toMatchObject({ status: 400, body: { statusCode: 400, code: 'BAD_REQUEST', error: 'Bad Request' } });
  });
});

describe('model routes in the OpenAPI document', () => {
  it('has no wildcard path parameter, and documents ids with a slash as /models/{owner}/{name}', async () => {
    const doc = (await (await fetch(`${url}/docs/json`)).json()) as { paths: Record<string, unknown> };
    const paths = Object.keys(doc.paths);
    expect(paths.filter((p) => p.includes('{*}') || p.includes('*'))).toEqual([]);
    expect(paths).toEqual(expect.arrayContaining(['/api/v1/models', '/api/v1/models/{id}', '/api/v1/models/{owner}/{name}']));
  });

  it.each([
    [LOCAL, `/api/v1/models/${LOCAL}`],
    [REMOTE, `/api/v1/models/${REMOTE}`],
    [REMOTE, `/api/v1/models/${encodeURIComponent(REMOTE)}`],
  ])('GET of %s by %s answers it', async (id, path) => {
    const res = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${client.apiKey}` } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id, object: 'model' });
  });
});

describe('.env.example', () => {
  it('names only models a worker configured from it serves', async () => {
    const text = readFileSync(new URL('../../../.env.example', import.meta.url), 'utf8');
    const settings = Object.fromEntries([...text.matchAll(/^([A-Z][A-Z0-9_]*)=(.*)$/gm)].map((m) => [m[1]!, m[2]!.trim()]));
    const named = [...text.matchAll(/^#?\s*RETRIEVAL_EMBEDDINGS_MODEL=(.*)$/gm)].map((m) => m[1]!.trim());
    expect(named.length).toBeGreaterThan(0);

    const worker = await buildApp(loadConfig({ ...settings, ...envOverrides() }), { logger: false, underPressure: false, adminRateLimit: false });
    try {
      const served = (await worker.inject({ method: 'GET', url: '/api/v1/models' })).json<{ data: Array<{ id: string }> }>().data.map((m) => m.id);
      for (const model of named) {
        expect(served).toContain(model);
        const res = await worker.inject({ method: 'POST', url: '/api/v1/embeddings', payload: { model, input: 'example' } });
        expect(res.statusCode, res.body).toBe(200);
      }
    } finally {
      await worker.close();
    }
  });
});

/** The test's own Redis and a silent log; the rest as .env.example says. */
function envOverrides(): Record<string, string> {
  return { REDIS_URL: env.redis.url, REDIS_DB_MULTIMODAL_WORKER: '12', SERVICE_NAME: `${env.config.SERVICE_NAME}-example`, LOG_LEVEL: 'silent', NODE_ENV: 'test', AUTH_MODE: 'off' };
}
