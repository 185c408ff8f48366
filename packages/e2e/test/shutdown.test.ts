import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from 'undici';
import { freePort, startRedisServer, type RedisServer } from '@aicache/test-redis';
import { ServiceProcess } from './stack.js';

/** close-with-grace's delay in runServer: past it the process is killed with exit code 1. */
const GRACE_MS = 10_000;
const DIMS = 4;

/**
 * An OpenAI-compatible embeddings backend that holds each call until the test releases it, so a request
 * to the worker is in flight for exactly as long as the test wants.
 */
interface GatedBackend {
  url: string;
  /** Resolves when the next embeddings call has arrived (and is being held). */
  arrived: Promise<void>;
  release(): void;
  close(): Promise<void>;
}

async function startGatedBackend(): Promise<GatedBackend> {
  let onArrival!: () => void;
  let release!: () => void;
  const arrived = new Promise<void>((r) => (onArrival = r));
  const released = new Promise<void>((r) => (release = r));
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => (body += d));
    req.on('end', () => {
      if (req.method !== 'POST' || !req.url?.endsWith('/embeddings')) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"not here"}}');
        return;
      }
      const input = (JSON.parse(body) as { input: string[] }).input;
      onArrival();
      void released.then(() => {
        const data = input.map((_, index) => ({ object: 'embedding', index, embedding: Array.from({ length: DIMS }, (_v, j) => (j === index % DIMS ? 1 : 0)) }));
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ object: 'list', data, model: 'gated-embed', usage: { prompt_tokens: 1, total_tokens: 1 } }));
      });
    });
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${port}/v1`,
    arrived,
    release,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

let redis: RedisServer;
let backend: GatedBackend;
let worker: ServiceProcess;

beforeAll(async () => {
  redis = await startRedisServer();
  backend = await startGatedBackend();
  const port = await freePort();
  worker = new ServiceProcess(
    'multimodal-worker',
    port,
    {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/tmp',
      HOST: '127.0.0.1',
      PORT: String(port),
      REDIS_URL: redis.url,
      CACHE_ADMIN_TOKEN: `e2e-${randomBytes(16).toString('hex')}`,
      LOG_LEVEL: 'info',
      NODE_ENV: 'test',
      // About shutdown, not who may call: the held request needs no credential.
      AUTH_MODE: 'off',
      EMBEDDINGS_BASE_URL: backend.url,
      EMBEDDINGS_MODEL: 'gated-embed',
      EMBEDDINGS_DIMENSIONS: String(DIMS),
    },
    redis.dir,
  );
  await worker.start();
});

afterAll(async () => {
  await worker?.stop('SIGKILL');
  await backend?.close();
  await redis?.stop();
});

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1');
    sock.once('connect', () => {
      sock.destroy();
      resolve(false);
    });
    sock.once('error', () => resolve(true));
  });
}

/** The listening socket is gone once the app ran its preClose hooks and called server.close(). */
async function untilNotListening(proc: ServiceProcess, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await refused(proc.port))) {
    if (Date.now() > deadline) throw new Error(`still accepting connections ${ms} ms after SIGTERM:\n${proc.tail()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('SIGTERM with a keep-alive request in flight', () => {
  it('finishes the request with connection: close, runs the onClose work and exits 0 well before the grace delay', async () => {
    // One keep-alive connection: a first request leaves it open, the second one is held by the backend.
    const client = new Client(worker.url, { pipelining: 1, keepAliveTimeout: 60_000 });
    try {
      const warm = await client.request({ method: 'GET', path: '/health' });
      await warm.body.text();
      expect(warm.statusCode).toBe(200);
      expect(warm.headers.connection).toBe('keep-alive');

      const inFlight = client.request({
        method: 'POST',
        path: '/api/v1/embeddings',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ input: ['held by the backend while the worker shuts down'] }),
      });
      await backend.arrived;

      const signalledAt = Date.now();
      process.kill(worker.pid!, 'SIGTERM');
      await untilNotListening(worker, 5000);
      backend.release();

      const res = await inFlight;
      const body = (await res.body.json()) as { data: Array<{ embedding: number[] }> };
      expect(res.statusCode).toBe(200);
      expect(body.data[0]?.embedding).toHaveLength(DIMS);
      expect(res.headers.connection).toBe('close');

      await Promise.race([worker.waitExit(), new Promise((r) => setTimeout(r, GRACE_MS + 5000))]);
      const took = Date.now() - signalledAt;
      expect(worker.exit, worker.tail()).toEqual({ code: 0, signal: null });
      // The bound is the grace delay itself: reaching it means close-with-grace gave up (exit 1).
      expect(took).toBeLessThan(GRACE_MS);
      // Logged by runServer once app.close() resolved, i.e. after every onClose hook (stats flush, QUIT) ran.
      expect(worker.output).toContain('"msg":"closed"');
      expect(worker.output).not.toContain('killed by timeout');
    } finally {
      await client.close().catch(() => undefined);
    }
  });
});
