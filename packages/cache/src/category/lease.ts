import { randomUUID } from 'node:crypto';
import { leaseKey } from '../keys.js';
import { ACQUIRE, RELEASE, runScript } from '../scripts.js';
import type { CategoryCore } from './core.js';

/** One attempt's lease key and the token that proves it is ours. */
export interface Lease {
  readonly key: string;
  readonly token: string;
}

/**
 * ACQUIRE's answer, read: `fresh` the entry is there and live (`value` its bytes), `held` we hold the lease (the
 * caller runs the loader, then releases), `busy` another replica holds it. `generation` is the category's
 * invalidation generation, read in the same script (a write of what the loader read is checked against it).
 */
export interface LeaseReply {
  state: 'fresh' | 'held' | 'busy';
  generation: string;
  value: Buffer | undefined;
}

/** ACQUIRE's answer on the wire: code, generation, value. */
type AcquireReply = [number, Buffer | string | undefined, Buffer | undefined];

const STATES = { 1: 'fresh', 2: 'held' } as const;

export function newLease(core: CategoryCore, full: string): Lease {
  return { key: leaseKey(core.ctx.service, full), token: randomUUID() };
}

/**
 * One ACQUIRE: the load of a missing entry (`miss`) and the background refresh of a stale one (`refresh`) both go
 * through here. `freshAfter` (epoch ms, 0 = any): an entry that expired logically before it does not count as fresh.
 * Rejects when Redis fails.
 */
export async function acquire(core: CategoryCore, full: string, lease: Lease, purpose: 'miss' | 'refresh', freshAfter: number): Promise<LeaseReply> {
  const { ctx } = core;
  const [code, gen, value] = (await ctx.runner.run((c) =>
    runScript(c, ACQUIRE, [full, lease.key, core.genKeyOf(full)], [lease.token, ctx.leaseTtlMs, purpose, core.genField, freshAfter]),
  )) as AcquireReply;
  return { state: STATES[code as 1 | 2] ?? 'busy', generation: String(gen ?? ''), value };
}

/** Runs `work` holding the lease, and gives it back whatever happens. */
export async function holding<T>(core: CategoryCore, lease: Lease, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } finally {
    await release(core, lease);
  }
}

async function release(core: CategoryCore, lease: Lease): Promise<void> {
  try {
    await core.ctx.runner.run((c) => runScript(c, RELEASE, [lease.key], [lease.token]));
  } catch {
    // The lease expires on its own.
  }
}
