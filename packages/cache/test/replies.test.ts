import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getTestRedis, uniqueName, type TestRedis } from '@aicache/test-redis';
import type { Redis } from 'ioredis';
import { fieldsOf, parseInfo, streamEntries } from '../src/index.js';
import { rawClient } from './helpers.js';

/** The reading of flat field-value replies, on the replies a real Redis gives. */
describe('fieldsOf and streamEntries', () => {
  let r: TestRedis;
  let client: Redis;
  const key = `${uniqueName('replies')}:stream`;

  beforeAll(async () => {
    r = await getTestRedis();
    client = rawClient(r);
  });
  afterAll(async () => {
    await client?.del(key);
    client?.disconnect();
    await r?.stop();
  });

  it('reads XRANGE and XREVRANGE entries with their fields, in the order Redis answers', async () => {
    const first = await client.xadd(key, '*', 'at', '2026-01-01T00:00:00Z', 'actor', 'alice', 'empty', '');
    const second = await client.xadd(key, '*', 'actor', 'bob', 'note', 'a value with spaces = and, commas');
    expect(streamEntries(await client.xrange(key, '-', '+'))).toEqual([
      { id: first, fields: { at: '2026-01-01T00:00:00Z', actor: 'alice', empty: '' } },
      { id: second, fields: { actor: 'bob', note: 'a value with spaces = and, commas' } },
    ]);
    expect(streamEntries(await client.xrevrange(key, '+', '-', 'COUNT', 1))).toEqual([{ id: second, fields: { actor: 'bob', note: 'a value with spaces = and, commas' } }]);
    expect(streamEntries([])).toEqual([]);
  });

  it('reads CONFIG GET pairs, and drops a last field without its value', async () => {
    expect(fieldsOf((await client.call('CONFIG', 'GET', 'maxmemory-policy')) as unknown[])).toEqual({ 'maxmemory-policy': expect.any(String) });
    expect(fieldsOf(['a', '1', 'b', 2, 'dangling'])).toEqual({ a: '1', b: '2' });
  });
});

describe('parseInfo', () => {
  it('reads the fields of a real INFO, leaving out section headers and blank lines', async () => {
    const r = await getTestRedis();
    const client = rawClient(r);
    try {
      const info = parseInfo(String(await client.info('server')));
      expect(info.redis_version).toMatch(/^\d+\.\d+\.\d+$/);
      // The port the server listens on, as it says itself (behind a container's port mapping it is not the URL's).
      expect(info.tcp_port).toBe(fieldsOf((await client.call('CONFIG', 'GET', 'port')) as unknown[]).port);
      expect(Number(info.tcp_port)).toBeGreaterThan(0);
      expect(Object.keys(info).some((k) => k.startsWith('#') || k === '')).toBe(false);
    } finally {
      client.disconnect();
      await r.stop();
    }
    expect(parseInfo('# Memory\r\nused_memory:1024\r\n\r\nmaxmemory_policy:noeviction \r\nno colon line\r\n')).toEqual({ used_memory: '1024', maxmemory_policy: 'noeviction' });
  });
});
