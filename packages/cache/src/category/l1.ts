import type { L1Entry } from '../l1.js';
import type { Decoded } from '../serialization.js';
import type { CategoryCore } from './core.js';

/** A hit served by the in-process tier counts as a hit and as an L1 hit. */
export function countL1Hit(core: CategoryCore, n = 1): void {
  core.count('hits', n);
  core.count('l1_hits', n);
}

/** The in-process entry of `full`, counted as a hit, or undefined (no tier, or not in it). */
export function fromL1(core: CategoryCore, full: string): L1Entry | undefined {
  const hit = core.l1?.get(full);
  if (hit) countL1Hit(core);
  return hit;
}

/** Keeps what a read found in L1, for at most what is left of its TTL in Redis and of its logical TTL. */
export function fillL1(core: CategoryCore, full: string, token: number, entry: Decoded, size: number, pttl: number | undefined): void {
  const l1 = core.l1;
  // undefined: L1 was off when the read went out; -2: expired in between.
  if (!l1 || pttl === undefined || pttl === -2) return;
  let ttl = pttl > 0 ? pttl : l1.ttlCapMs;
  if (entry.meta) ttl = Math.min(ttl, entry.meta.expiresAt - Date.now());
  l1.fill(full, token, { value: entry.value, raw: undefined, meta: entry.meta }, size + full.length, ttl);
}
