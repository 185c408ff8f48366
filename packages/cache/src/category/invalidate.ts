import type { Cluster } from 'ioredis';
import { groupBy, groupByNode } from '../cluster.js';
import { isCluster } from '../connection.js';
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
      if (isCluster(c)) return removeAcrossSlots(core, c, fulls);
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

/**
 * invalidate() on a Cluster: per bucket the generation bump and the UNLINK of its entries and leases (one slot),
 * the buckets pipelined per node; then the L1 message, which any node broadcasts (see L1Sync).
 */
async function removeAcrossSlots(core: CategoryCore, c: Cluster, fulls: string[]): Promise<number> {
  const { ctx } = core;
  const buckets = groupBy(fulls, (f) => ctx.layout.tagOf(f));
  const counts = await Promise.all(
    groupByNode(c, buckets, (b) => b[0] as string).map(async (node) => {
      const pipe = c.pipeline();
      for (const b of node) {
        pipe
          .hincrby(core.genKeyOf(b[0] as string), core.genField, 1)
          .unlink(...b)
          .unlink(...b.map((f) => leaseKey(ctx.service, f)));
      }
      const res = (await pipe.exec()) ?? [];
      const counts = node.map(async (b, i) => {
        const replies = res.slice(i * 3, i * 3 + 3);
        const redirected = replies.some(([err]) => err && /^(MOVED|ASK|TRYAGAIN)/.test(err.message));
        if (redirected) {
          // The bucket's slot is moving: its commands again, one key each (a multi-key command over a slot half
          // moved answers TRYAGAIN), each following its redirection.
          await c.hincrby(core.genKeyOf(b[0] as string), core.genField, 1);
          const removed = await Promise.all(b.map((f) => c.unlink(f)));
          await Promise.all(b.map((f) => c.unlink(leaseKey(ctx.service, f))));
          return removed.reduce((a, n) => a + n, 0);
        }
        const failed = replies.find(([err]) => err);
        if (failed || replies.length < 3) throw failed?.[0] ?? new Error('empty pipeline reply');
        return Number(replies[1]?.[1]);
      });
      return (await Promise.all(counts)).reduce((a, n) => a + n, 0);
    }),
  );
  const sync = core.l1 ? ctx.sync : undefined;
  if (sync) await c.publish(sync.channel, sync.message(core.name, fulls)).catch(() => undefined);
  return counts.reduce((a, b) => a + b, 0);
}

export async function invalidatePattern(core: CategoryCore, glob: string): Promise<number> {
  validateGlob(glob);
  return unlinkMatching(core, core.ctx.layout.match(core.name, glob), 'invalidatePattern');
}

export function clear(core: CategoryCore): Promise<number> {
  return unlinkMatching(core, core.ctx.layout.match(core.name, '*'), 'clear');
}

async function unlinkMatching(core: CategoryCore, match: string, op: string): Promise<number> {
  const { ctx, l1 } = core;
  try {
    await bumpGenerations(ctx.runner, ctx.layout.genKeys(), [core.genField]);
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
