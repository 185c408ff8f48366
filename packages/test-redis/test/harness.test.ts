import { afterAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { getTestRedis, startRedisServer, type TestRedis } from '../src/index.js';

describe('test redis harness', () => {
  let shared: TestRedis | undefined;
  afterAll(async () => {
    await shared?.stop();
  });

  it('gives a reachable Redis', async () => {
    shared = await getTestRedis();
    const c = new Redis(shared.url);
    expect(await c.ping()).toBe('PONG');
    await c.quit();
  });

  it('starts a private server that can be killed and restarted, keeping AOF data', async () => {
    const srv = await startRedisServer({ appendfsync: 'always' });
    const c = new Redis(srv.url, { maxRetriesPerRequest: 1 });
    c.on('error', () => undefined);
    await c.set('k', 'v');
    await srv.kill();
    await srv.restart();
    const c2 = new Redis(srv.url);
    expect(await c2.get('k')).toBe('v');
    c.disconnect();
    await c2.quit();
    await srv.stop();
  });

  it('starts a server that requires a password', async () => {
    const srv = await startRedisServer({ password: 's3cret-pw' });
    const anon = new Redis({ host: srv.host, port: srv.port, lazyConnect: true, enableReadyCheck: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    const errors: string[] = [];
    anon.on('error', (e: Error) => errors.push(e.message));
    await expect(anon.connect()).rejects.toThrow();
    expect(errors.join('\n')).toMatch(/NOAUTH/);
    anon.disconnect();
    const authed = new Redis(srv.url);
    expect(await authed.ping()).toBe('PONG');
    await authed.quit();
    await srv.stop();
  });

  it('starts a server whose ACL turns the default user off', async () => {
    const srv = await startRedisServer({ acl: 'user default off\nuser app on >app-pw ~* +@all', auth: { username: 'app', password: 'app-pw' } });
    expect(srv.url).toBe(`redis://app:app-pw@127.0.0.1:${srv.port}`);
    const c = new Redis(srv.url);
    expect(await c.ping()).toBe('PONG');
    await c.quit();
    await srv.stop();
  });
});
