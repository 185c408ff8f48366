import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countKeys, scanKeys, startRedisServer, unlinkMatching, type RedisServer } from '../src/index.js';

describe('key helpers (SCAN over a real Redis)', () => {
  let server: RedisServer;
  let client: Redis;

  beforeAll(async () => {
    server = await startRedisServer();
    client = new Redis(server.url, { maxRetriesPerRequest: 1 });
    // More keys than one SCAN page returns, so a helper that reads only the first page is caught.
    const pipe = client.pipeline();
    for (let i = 0; i < 2500; i++) pipe.set(`mine:${String(i).padStart(4, '0')}`, '1');
    pipe.set('other:a', '1');
    pipe.set('other:b', '1');
    await pipe.exec();
  });
  afterAll(async () => {
    client?.disconnect();
    await server?.stop();
  });

  it('scanKeys walks every page and returns the matching keys sorted', async () => {
    const keys = await scanKeys(client, 'mine:*');
    expect(keys).toHaveLength(2500);
    expect(keys[0]).toBe('mine:0000');
    expect(keys.at(-1)).toBe('mine:2499');
    expect(await scanKeys(client, 'other:*')).toEqual(['other:a', 'other:b']);
  });

  it('countKeys counts the matches; a pattern nothing matches counts 0', async () => {
    expect(await countKeys(client, 'mine:*')).toBe(2500);
    expect(await countKeys(client, 'nobody:*')).toBe(0);
  });

  it('unlinkMatching removes the keys of every pattern given and nothing else', async () => {
    expect(await unlinkMatching(client, 'mine:*', 'other:b')).toBe(2501);
    expect(await scanKeys(client)).toEqual(['other:a']);
  });
});
