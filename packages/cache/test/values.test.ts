import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getTestRedis, uniqueName, type TestRedis } from '@aicache/test-redis';
import type { Redis } from 'ioredis';
import { Cache, InvalidPatternError, UnknownCategoryError } from '../src/index.js';
import { connectionOf, rawClient } from './helpers.js';

describe('values and keys', () => {
  let r: TestRedis;
  let raw: Redis;
  let cache: Cache<'embeddings' | 'files'>;
  const DB = 4;
  beforeAll(async () => {
    r = await getTestRedis();
    raw = rawClient(r, DB);
    cache = new Cache({ service: uniqueName('values'), categories: { embeddings: { ttl: 600 }, files: { ttl: 600 } }, connection: connectionOf(r, DB) });
  });
  afterAll(async () => {
    await cache.clear();
    await cache.close();
    raw.disconnect();
    await r.stop();
  });

  it('returns the same kind of value that was written', async () => {
    const files = cache.category('files');
    const obj = { a: 1, nested: { list: [1, 'two', null, true] }, s: 'é✓' };
    const bytes = Buffer.from([0, 255, 1, 254, 0x80, 0x7f, 0xc3, 0x28]);
    await files.set('obj', obj);
    await files.set('str', 'plain text é✓');
    await files.set('json-looking-string', '{"a":1}');
    await files.set('bytes', bytes);
    await files.set('num', 42);
    await files.set('null', null);
    expect(await files.get('obj')).toEqual(obj);
    expect(await files.get('str')).toBe('plain text é✓');
    expect(await files.get('json-looking-string')).toBe('{"a":1}');
    const back = await files.get<Buffer>('bytes');
    expect(Buffer.isBuffer(back)).toBe(true);
    expect(back?.equals(bytes)).toBe(true);
    expect(await files.get('num')).toBe(42);
    expect(await files.get('null')).toBeNull();
    expect(await files.get('missing')).toBeUndefined();
  });

  it('stores a Float32Array as raw float32 bytes (a 1,536-dim vector costs ~6 KB) and reads it back exactly', async () => {
    const emb = cache.category('embeddings');
    const vec = new Float32Array(1536).map((_, i) => Math.sin(i) * 1e-3 + i);
    await emb.set('vec', vec);
    const back = await emb.get<Float32Array>('vec');
    expect(back).toBeInstanceOf(Float32Array);
    expect(Array.from(back ?? [])).toEqual(Array.from(vec));
    expect(await raw.strlen(emb.key('vec'))).toBeLessThanOrEqual(1536 * 4 + 16);
  });

  it('replaces the key part of a key over 200 bytes by its SHA-256, and still finds the entry', async () => {
    const files = cache.category('files');
    const long = 'x'.repeat(500);
    const full = files.key(long);
    expect(full).toMatch(new RegExp(`^${cache.service}:files:#[0-9a-f]{64}$`));
    expect(files.key('short')).toBe(`${cache.service}:files:short`);
    await files.set(long, 'v');
    expect(await files.get(long)).toBe('v');
    expect(await raw.exists(full)).toBe(1);
  });

  it('has/delete/invalidate answer what a user expects', async () => {
    const files = cache.category('files');
    await files.set('h1', 'x');
    await files.set('h2', '');
    expect(await files.has('h1')).toBe(true);
    expect(await files.has('h2')).toBe(true);
    expect(await files.has('nope')).toBe(false);
    expect(await files.delete('h1')).toBe(true);
    expect(await files.delete('h1')).toBe(false);
    expect(await files.invalidate(['h2', 'nope'])).toBe(1);
    expect(await files.has('h2')).toBe(false);
  });

  it('mget answers in the order of the keys; mset writes all entries with their TTLs', async () => {
    const files = cache.category('files');
    expect(await files.mset<unknown>([{ key: 'm1', value: { n: 1 } }, { key: 'm2', value: 'two', ttl: 30 }, { key: 'm3', value: Buffer.from('3') }])).toBe(true);
    const got = await files.mget(['m3', 'missing', 'm1', 'm2']);
    expect(got[0]).toEqual(Buffer.from('3'));
    expect(got.slice(1)).toEqual([undefined, { n: 1 }, 'two']);
    expect(await raw.ttl(files.key('m2'))).toBeLessThanOrEqual(32);
    expect(await files.mget([])).toEqual([]);
    expect(await files.mset([])).toBe(true);
  });

  it('refuses unknown categories and bad patterns', async () => {
    expect(() => cache.category('nope' as 'files')).toThrow(UnknownCategoryError);
    const files = cache.category('files');
    await expect(files.invalidatePattern('')).rejects.toThrow(InvalidPatternError);
    await expect(files.invalidatePattern('a\nb')).rejects.toThrow(InvalidPatternError);
    await expect(files.invalidatePattern('x'.repeat(513))).rejects.toThrow(InvalidPatternError);
    expect(cache.hasCategory('files')).toBe(true);
    expect(cache.listCategories().map((c) => c.name)).toEqual(['embeddings', 'files']);
  });
});
