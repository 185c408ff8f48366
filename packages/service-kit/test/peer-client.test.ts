import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Type } from 'typebox';
import { freePort } from '@aicache/test-redis';
import { PeerClient, errors, type PeerFailure, type ServiceApp } from '../src/index.js';
import { buildTestApp } from './helpers.js';

let peer: ServiceApp;
let peerUrl: string;
const calls = new Map<string, number>();
const count = (key: string) => {
  const n = (calls.get(key) ?? 0) + 1;
  calls.set(key, n);
  return n;
};

beforeAll(async () => {
  peer = await buildTestApp('peer');
  peer.get('/echo', async (req) => ({ requestId: req.headers['x-request-id'] ?? null }));
  peer.get('/flaky/:key', async (req, reply) => {
    const { key } = req.params as { key: string };
    if (count(key) === 1) return reply.code(503).send({ statusCode: 503, code: 'WARMING_UP', error: 'Service Unavailable', message: 'warming up' });
    return { attempts: calls.get(key) };
  });
  peer.post('/flaky/:key', async (req, reply) => {
    const { key } = req.params as { key: string };
    count(key);
    return reply.code(503).send({ statusCode: 503, code: 'WARMING_UP', error: 'Service Unavailable', message: 'warming up' });
  });
  peer.post('/embeddings', { schema: { body: Type.Object({ text: Type.String() }) } }, async (req) => ({ dims: req.body.text.length }));
  peer.get('/missing', async () => {
    throw errors.NotFound('model', 'clip-x');
  });
  peer.post('/openai-shaped', async (_req, reply) =>
    reply.code(413).send({ error: { message: 'input has 2049 items; one request takes at most 2048: split the batch', type: 'invalid_request_error', param: 'input', code: 'body_too_large' } }),
  );
  peer.get('/slow', async () => {
    await new Promise((r) => setTimeout(r, 1500));
    return { late: true };
  });
  peerUrl = await peer.listen({ port: 0, host: '127.0.0.1' });
});
afterAll(() => peer.close());

function client(opts: Partial<ConstructorParameters<typeof PeerClient>[0]> = {}) {
  return new PeerClient({ name: 'multimodal-worker', baseUrl: peerUrl, timeoutMs: 2000, retries: 2, backoffMs: [10], ...opts });
}

describe('PeerClient', () => {
  it('sends and receives JSON', async () => {
    const c = client();
    try {
      expect(await c.post('/embeddings', { text: 'hello' })).toEqual({ dims: 5 });
      expect(await c.ready()).toBe(true);
    } finally {
      await c.close();
    }
  });

  it('retries an idempotent GET after a 503 and then succeeds', async () => {
    const c = client();
    try {
      expect(await c.get('/flaky/get-1')).toEqual({ attempts: 2 });
    } finally {
      await c.close();
    }
  });

  it('retries a POST marked idempotent', async () => {
    const c = client();
    try {
      await expect(c.post('/flaky/post-idem', {}, { idempotent: true })).rejects.toMatchObject({ code: 'PEER_ERROR' });
      expect(calls.get('post-idem')).toBe(3);
    } finally {
      await c.close();
    }
  });

  it('does not retry a POST that is not marked idempotent', async () => {
    const c = client();
    try {
      const err = (await c.post('/flaky/post-1', { a: 1 }).catch((e: unknown) => e)) as Error & PeerFailure & { code: string; statusCode: number };
      expect(err).toBeInstanceOf(errors.PeerError);
      expect(err).toMatchObject({ code: 'PEER_ERROR', statusCode: 502, peer: 'multimodal-worker', peerStatus: 503, peerCode: 'WARMING_UP' });
      expect(err.message).toBe('multimodal-worker answered 503: warming up');
      expect(calls.get('post-1')).toBe(1);
    } finally {
      await c.close();
    }
  });

  it("carries the message and code of a peer's OpenAI-shaped error (the worker's embeddings route)", async () => {
    const c = client();
    try {
      await expect(c.post('/openai-shaped', {})).rejects.toMatchObject({
        code: 'PEER_ERROR',
        peerStatus: 413,
        peerCode: 'body_too_large',
        message: 'multimodal-worker answered 413: input has 2049 items; one request takes at most 2048: split the batch',
      });
    } finally {
      await c.close();
    }
  });

  it("a peer's 404 becomes a PeerError carrying the peer's message", async () => {
    const c = client();
    try {
      await expect(c.get('/missing')).rejects.toMatchObject({ code: 'PEER_ERROR', peerStatus: 404, peerCode: 'NOT_FOUND', message: "multimodal-worker answered 404: model 'clip-x' not found" });
    } finally {
      await c.close();
    }
  });

  it('a peer that is down gives PeerUnavailable naming the peer instead of hanging', async () => {
    const port = await freePort();
    const c = client({ baseUrl: `http://127.0.0.1:${port}` });
    try {
      const err = await c.get('/anything').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(errors.PeerUnavailable);
      expect(err).toMatchObject({ code: 'PEER_UNAVAILABLE', statusCode: 503, peer: 'multimodal-worker' });
      expect((err as Error).message).toMatch(/^multimodal-worker is unavailable: .*ECONNREFUSED/);
      expect(await c.ready()).toBe(false);
    } finally {
      await c.close();
    }
  });

  it('a peer that does not answer in time gives PeerUnavailable', async () => {
    const c = client({ timeoutMs: 200 });
    try {
      const err = await c.get('/slow').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(errors.PeerUnavailable);
      expect((err as Error).message).toBe('multimodal-worker is unavailable: no answer within 200 ms');
    } finally {
      await c.close();
    }
  });
});

describe('request ids', () => {
  let app: ServiceApp;
  let worker: PeerClient;
  beforeAll(async () => {
    app = await buildTestApp('front');
    worker = client();
    app.get('/via-peer', async (req) => worker.get<{ requestId: string | null }>('/echo', { requestId: req.id }));
    await app.ready();
  });
  afterAll(async () => {
    await app.close();
    await worker.close();
  });

  it('an incoming x-request-id is echoed in the reply and forwarded to the peer', async () => {
    const res = await app.inject({ method: 'GET', url: '/via-peer', headers: { 'x-request-id': 'req-abc-123' } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-request-id']).toBe('req-abc-123');
    expect(res.json()).toEqual({ requestId: 'req-abc-123' });
  });

  it('a request without an id gets a fresh one, the same in reply and at the peer', async () => {
    const res = await app.inject({ method: 'GET', url: '/via-peer' });
    const id = res.headers['x-request-id'];
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.json()).toEqual({ requestId: id });
  });

  it('a malformed id is replaced rather than echoed', async () => {
    const res = await app.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': 'bad id\twith spaces' } });
    expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('error replies carry the request id too', async () => {
    const res = await app.inject({ method: 'GET', url: '/nope', headers: { 'x-request-id': 'req-404' } });
    expect(res.statusCode).toBe(404);
    expect(res.headers['x-request-id']).toBe('req-404');
  });
});
