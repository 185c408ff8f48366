import { bumpGenerations, scanUnlink, validateGlob } from '../invalidation.js';
import { leaseKey } from '../keys.js';
import type { CategoryCore } from './core.js';

/**
 * Removes these keys (and their leases), bumps the generation so loads in flight cannot write back what they read
 * before, tells the other replicas' L1s in the same pipeline, and detaches this process's loads of them.
 */
export async function invalidate(core: CategoryCore, keys: string[]): Promise<number> {
  if (keys.length === 0) return 0;
  const { ctx, l1 } = core;
  const fulls = keys.map((k) => core.key(k));
  const sync = l1 ? ctx.sync : undefined;
  try {
    const n = await ctx.runner.run(async (c) => {
      // The leases go too: a load that starts after this one must not wait for a load whose write will be dropped.
      const leases = fulls.map((f) => leaseKey(ctx.service, f));
      const pipe = c.pipeline().hincrby(core.genKey, core.genField, 1).unlink(...fulls).unlink(...leases);
      // Same pipeline: sent right behind the UNLINK, without another round trip; its own failure is ignored.
      if (sync) pipe.publish(sync.channel, sync.message(core.name, fulls));
      const res = await pipe.exec();
      const [err, removed] = res?.[1] ?? [new Error('empty pipeline reply')];
      if (err) throw err;
      return Number(removed);
    });
    l1?.evict(fulls);
    core.detachLoads(fulls);
    core.count('deletes', n);
    return n;
  } catch (err) {
    // It may have landed all the same.
    l1?.evict(fulls);
    core.detachLoads(fulls);
    core.fail('invalidate', err);
    return 0;
  }
}

export async function invalidatePattern(core: CategoryCore, glob: string): Promise<number> {
  validateGlob(glob);
  return unlinkMatching(core, core.prefix + glob, 'invalidatePattern');
}

export function clear(core: CategoryCore): Promise<number> {
  return unlinkMatching(core, `${core.prefix}*`, 'clear');
}

async function unlinkMatching(core: CategoryCore, match: string, op: string): Promise<number> {
  const { ctx, l1 } = core;
  try {
    await bumpGenerations(ctx.runner, core.genKey, [core.genField]);
  } catch (err) {
    l1?.evictAll();
    core.detachLoads();
    core.fail(op, err);
    return 0;
  }
  const { removed, error } = await scanUnlink(ctx.runner, match);
  // A glob cannot be matched against hashed keys here: the whole category's L1 and loads go.
  l1?.evictAll();
  core.detachLoads();
  if (l1 && ctx.sync) await ctx.sync.publish(core.name);
  if (error !== undefined) core.fail(op, error);
  core.count('deletes', removed);
  return removed;
}
