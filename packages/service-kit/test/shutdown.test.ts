import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { Client } from 'undici';
import { buildTestApp } from './helpers.js';
import type { ServiceApp } from '../src/index.js';

/**
 * A real listening server and one keep-alive connection: app.close() must not wait for the connection to
 * time out (Fastify keeps idle sockets 72 s) once the request on it has been answered.
 */
let app: ServiceApp | undefined;
let client: Client | undefined;
afterEach(async () => {
  await client?.destroy();
  client = undefined;
  app?.server.closeAllConnections();
  await app?.close();
  app = undefined;
});

/** Waits until the server stopped listening: close() has run its preClose hooks and called server.close(). */
async function untilClosing(target: ServiceApp): Promise<void> {
  while (target.server.listening) await new Promise((r) => setTimeout(r, 5));
}

function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

/** Resolves with 'closed' when app.close() resolves, or 'still open' after `ms` (a hang, not a speed bound). */
function closeWithin(target: ServiceApp, ms: number): Promise<'closed' | 'still open'> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    target.close().then(() => 'closed' as const),
    new Promise<'still open'>((r) => (timer = setTimeout(() => r('still open'), ms))),
  ]).finally(() => clearTimeout(timer));
}

async function listen(target: ServiceApp): Promise<Client> {
  const address = await target.listen({ host: '127.0.0.1', port: 0 });
  const c = new Client(address, { pipelining: 1, keepAliveTimeout: 600_000 });
  const warm = await c.request({ method: 'GET', path: '/health' });
  await warm.body.text();
  expect(warm.headers.connection).toBe('keep-alive');
  return c;
}

// 10 s against a 600 s keep-alive: without the fix close() waits out the socket's timeout.
const HANG_MS = 10_000;

describe('closing with a keep-alive request in flight', () => {
  it('answers the in-flight request with connection: close and then closes', async () => {
    app = await buildTestApp();
    app.server.keepAliveTimeout = 600_000;
    const held = gate();
    const arrived = gate();
    app.get('/slow', async () => {
      arrived.open();
      await held.wait;
      return { done: true };
    });
    client = await listen(app);

    const inFlight = client.request({ method: 'GET', path: '/slow' });
    await arrived.wait;
    const closed = closeWithin(app, HANG_MS);
    await untilClosing(app);
    held.open();
    const res = await inFlight;
    expect(await res.body.json()).toEqual({ done: true });
    expect(res.headers.connection).toBe('close');
    expect(await closed).toBe('closed');
  });

  it('ends a connection whose streamed answer began before close() once the answer is complete', async () => {
    app = await buildTestApp();
    app.server.keepAliveTimeout = 600_000;
    const stream = new PassThrough();
    app.get('/stream', async (_request, reply) => reply.type('text/plain').send(stream));
    client = await listen(app);

    const answer = client.request({ method: 'GET', path: '/stream' });
    stream.write('first part;');
    const res = await answer;
    // The headers went out before close(): they say keep-alive, so the server must end the socket itself.
    expect(res.headers.connection).toBe('keep-alive');
    const closed = closeWithin(app, HANG_MS);
    await untilClosing(app);
    stream.end('last part');
    expect(await res.body.text()).toBe('first part;last part');
    expect(await closed).toBe('closed');
  });
});
