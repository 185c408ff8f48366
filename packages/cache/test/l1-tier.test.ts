import { describe, expect, it } from 'vitest';
import { L1Tier } from '../src/l1.js';
import { encode } from '../src/serialization.js';

const entry = (value: unknown) => ({ value, raw: undefined, meta: undefined });

// The race guard of the in-process tier, without Redis: what a Redis reply may store depends on what happened
// while it was in flight.
describe('L1Tier', () => {
  const tier = (): L1Tier => {
    const t = new L1Tier(10_000, 60_000);
    t.enable();
    return t;
  };

  it('stores nothing while disabled, and clears everything when disabled', () => {
    const t = new L1Tier(10_000, 60_000);
    t.fill('k', t.begin(), entry(1), 10, 1000);
    expect(t.get('k')).toBeUndefined();
    t.enable();
    t.fill('k', t.begin(), entry(1), 10, 1000);
    expect(t.get('k')?.value).toBe(1);
    t.disable();
    expect(t.info()).toEqual({ entries: 0, bytes: 0, maxBytes: 10_000, enabled: false });
  });

  it('a read reply does not fill a key evicted while the read was in flight (a newer value may exist)', () => {
    const t = tier();
    const token = t.begin();
    t.evict(['k']); // message: another replica overwrote k
    t.fill('k', token, entry('old'), 10, 1000);
    expect(t.get('k')).toBeUndefined();
    // Other keys are not affected; a read begun after the eviction fills.
    t.fill('j', token, entry('j'), 10, 1000);
    t.fill('k', t.begin(), entry('new'), 10, 1000);
    expect(t.get('j')?.value).toBe('j');
    expect(t.get('k')?.value).toBe('new');
  });

  it('a read reply does not fill anything begun before a clear, or before the tier was enabled again', () => {
    const t = tier();
    let token = t.begin();
    t.evictAll();
    t.fill('k', token, entry(1), 10, 1000);
    expect(t.get('k')).toBeUndefined();
    token = t.begin();
    t.disable();
    t.enable();
    t.fill('k', token, entry(1), 10, 1000);
    expect(t.get('k')).toBeUndefined();
  });

  it('an older read reply cannot overwrite what our own later write stored', () => {
    const t = tier();
    const readToken = t.begin();
    const writeToken = t.begin();
    t.store('k', writeToken, entry('written'), 10, 1000);
    t.fill('k', readToken, entry('read before the write'), 10, 1000);
    expect(t.get('k')?.value).toBe('written');
  });

  it('of two overlapping writes of one key, neither is kept (which one Redis kept last is not known here)', () => {
    const t = tier();
    const first = t.begin();
    const second = t.begin();
    t.store('k', first, entry('first'), 10, 1000);
    t.store('k', second, entry('second'), 10, 1000);
    expect(t.get('k')).toBeUndefined();
  });

  it('entries stored as bytes (set/mset) are decoded once, on the first hit', () => {
    const t = tier();
    t.store('k', t.begin(), { value: undefined, raw: encode({ a: 1 }), meta: undefined }, 10, 1000);
    const first = t.get('k')?.value;
    expect(first).toEqual({ a: 1 });
    expect(t.get('k')?.value).toBe(first);
  });

  it('stays within maxBytes, and refuses an entry larger than the whole tier', () => {
    const t = new L1Tier(1000, 50);
    t.enable();
    for (let i = 0; i < 50; i++) t.fill(`k${i}`, t.begin(), entry(i), 100, 10_000);
    expect(t.info().bytes).toBeLessThanOrEqual(1000);
    expect(t.info().entries).toBe(10);
    t.fill('big', t.begin(), entry('big'), 1001, 10_000);
    expect(t.get('big')).toBeUndefined();
  });

  it('remembers a bounded number of evictions (past it, every read in flight is refused instead)', () => {
    const t = tier();
    const token = t.begin();
    for (let i = 0; i < 10_000; i++) t.evict([`e${i}`]);
    t.fill('untouched', token, entry(1), 10, 1000);
    expect(t.get('untouched')).toBeUndefined();
    t.fill('untouched', t.begin(), entry(1), 10, 1000);
    expect(t.get('untouched')?.value).toBe(1);
  });
});
