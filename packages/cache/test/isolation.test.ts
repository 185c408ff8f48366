import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getTestRedis, uniqueName, type TestRedis } from '@aicache/test-redis';
import { Cache } from '../src/index.js';
import { connectionOf } from './helpers.js';

const categories = { shared: { ttl: 600 }, other: { ttl: 600 } };

describe('service isolation', () => {
  let r: TestRedis;
  beforeAll(async () => {
    r = await getTestRedis();
  });
  afterAll(async () => {
    await r.stop();
  });

  async function exercise(a: Cache<'shared' | 'other'>, b: Cache<'shared' | 'other'>): Promise<void> {
    for (const c of [a, b]) {
      await c.category('shared').mset(Array.from({ length: 50 }, (_, i) => ({ key: `k${i}`, value: `${c.service}-${i}`, tags: ['t'] })));
      await c.category('other').set('o', c.service, { tags: ['t'] });
    }
    // Same key names, never each other's values.
    expect(await a.category('shared').get('k1')).toBe(`${a.service}-1`);
    expect(await b.category('shared').get('k1')).toBe(`${b.service}-1`);

    expect(await a.category('shared').invalidatePattern('k1*')).toBe(11);
    expect(await b.category('shared').get('k1')).toBe(`${b.service}-1`);
    expect(await a.invalidateTags(['t'])).toBe(39 + 1);
    expect(await b.category('other').get('o')).toBe(b.service);
    await a.category('shared').set('again', 1);
    expect(await a.clear()).toBeGreaterThanOrEqual(1);
    expect(await a.category('shared').get('again')).toBeUndefined();
    expect(await b.category('shared').mget(['k0', 'k49'])).toEqual([`${b.service}-0`, `${b.service}-49`]);
    expect(await b.category('shared').clear()).toBe(50);
    expect(await b.category('other').get('o')).toBe(b.service);
    expect(await b.clear()).toBeGreaterThanOrEqual(1);
  }

  it('two services on different DBs never see or clear each other’s keys', async () => {
    const name = uniqueName('svc');
    const a = new Cache({ service: name, categories, connection: connectionOf(r, 6) });
    const b = new Cache({ service: name, categories, connection: connectionOf(r, 7) });
    expect([a.db, b.db]).toEqual([6, 7]);
    await exercise(a, b);
    await a.close();
    await b.close();
  });

  it('two services on the same DB with different names never see or clear each other’s keys', async () => {
    const a = new Cache({ service: uniqueName('svc'), categories, connection: connectionOf(r, 6) });
    // A name that is a prefix of the other: `svc-x` must not clear `svc-x-2`.
    const b = new Cache({ service: `${a.service}-2`, categories, connection: connectionOf(r, 6) });
    await exercise(a, b);
    await a.close();
    await b.close();
  });
});
