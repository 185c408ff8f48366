import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { freePort } from '@aicache/test-redis';
import { PeerClient, classifyNetworkError, errors, isUnavailable, type NetworkFailure } from '../src/index.js';

/** Raw TCP servers that misbehave in one way each, on real sockets. */
type Behaviour = 'silent' | 'reset' | 'garbage' | 'truncated-json';
const servers: Record<Behaviour, { server: Server; url: string; sockets: Set<Socket> }> = {} as never;

function start(behaviour: Behaviour): Promise<void> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.once('data', () => {
      if (behaviour === 'reset') socket.resetAndDestroy();
      else if (behaviour === 'garbage') socket.end('this is not HTTP at all\r\n\r\n');
      else if (behaviour === 'truncated-json') {
        socket.end('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 9\r\nconnection: close\r\n\r\n{"data":[');
      }
      // silent: reads the request and never answers
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      servers[behaviour] = { server, url: `http://127.0.0.1:${port}`, sockets };
      resolve();
    }),
  );
}

beforeAll(async () => {
  for (const b of ['silent', 'reset', 'garbage', 'truncated-json'] as const) await start(b);
});

afterAll(async () => {
  for (const { server, sockets } of Object.values(servers)) {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  }
});

/** What the kit makes of an undici request to url (and of reading its body as JSON). */
async function failureOf(url: string, timeoutMs = 300): Promise<NetworkFailure> {
  const timeout = AbortSignal.timeout(timeoutMs);
  try {
    const res = await request(url, { signal: timeout, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    await res.body.json();
  } catch (err) {
    return classifyNetworkError(err, { timeoutMs, timedOut: timeout.aborted });
  }
  throw new Error(`${url} answered`);
}

/** The same through the global fetch, which wraps undici's errors in a TypeError with a cause. */
async function fetchFailureOf(url: string, timeoutMs = 300): Promise<NetworkFailure> {
  const timeout = AbortSignal.timeout(timeoutMs);
  try {
    const res = await fetch(url, { signal: timeout });
    await res.json();
  } catch (err) {
    return classifyNetworkError(err, { timeoutMs, timedOut: timeout.aborted });
  }
  throw new Error(`${url} answered`);
}

describe('classifyNetworkError on real sockets', () => {
  it('a closed port is refused, and the request was not sent', async () => {
    const url = `http://127.0.0.1:${await freePort()}/`;
    for (const failure of [await failureOf(url), await fetchFailureOf(url)]) {
      expect(failure).toMatchObject({ kind: 'refused', code: 'ECONNREFUSED', notSent: true });
      expect(failure.detail).toMatch(/ECONNREFUSED/);
      expect(isUnavailable(failure)).toBe(true);
    }
  });

  it('a server that never answers has timed out, naming the time allowed', async () => {
    for (const failure of [await failureOf(servers.silent.url), await fetchFailureOf(servers.silent.url)]) {
      expect(failure).toMatchObject({ kind: 'timed-out', notSent: false, detail: 'no answer within 300 ms' });
      expect(isUnavailable(failure)).toBe(true);
    }
  });

  it('a server that resets the connection is unreachable, and the request may have been received', async () => {
    for (const failure of [await failureOf(servers.reset.url), await fetchFailureOf(servers.reset.url)]) {
      expect(failure.kind).toBe('unreachable');
      expect(failure.notSent).toBe(false);
      expect(isUnavailable(failure)).toBe(true);
    }
  });

  it('a server that does not speak HTTP, or cuts its JSON short, gave a bad answer', async () => {
    for (const url of [servers.garbage.url, servers['truncated-json'].url]) {
      for (const failure of [await failureOf(url), await fetchFailureOf(url)]) {
        expect(failure.kind, `${url}: ${failure.detail}`).toBe('bad-answer');
        expect(isUnavailable(failure)).toBe(false);
      }
    }
  });
});

describe('PeerClient uses the classification', () => {
  const client = (url: string) => new PeerClient({ name: 'multimodal-worker', baseUrl: url, timeoutMs: 300, retries: 1, backoffMs: [0] });

  it('answers PeerUnavailable (503) for a reset and PeerError (502) for an answer that is not HTTP', async () => {
    const reset = client(servers.reset.url);
    const garbage = client(servers.garbage.url);
    try {
      await expect(reset.get('/x')).rejects.toBeInstanceOf(errors.PeerUnavailable);
      const err = (await garbage.get('/x').catch((e: unknown) => e)) as Error & { statusCode: number; code: string; peerStatus?: number };
      expect(err).toBeInstanceOf(errors.PeerError);
      expect(err).toMatchObject({ statusCode: 502, code: 'PEER_ERROR' });
      expect(err.peerStatus).toBeUndefined();
      expect(err.message).toMatch(/^multimodal-worker answered badly: /);
    } finally {
      await reset.close();
      await garbage.close();
    }
  });

  it('answers PeerError (502) for a 200 whose JSON is cut short', async () => {
    const c = client(servers['truncated-json'].url);
    try {
      await expect(c.get('/x')).rejects.toMatchObject({ code: 'PEER_ERROR', peerStatus: 200, message: expect.stringMatching(/unreadable response/) });
    } finally {
      await c.close();
    }
  });
});
