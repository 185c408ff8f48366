import { Cluster, Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { askNode, isAlive, startRedisCluster, startRedisSentinel } from '../src/index.js';

const quiet = <T extends { on(event: 'error', fn: () => void): unknown }>(c: T): T => {
  c.on('error', () => undefined);
  return c;
};

describe('Cluster harness', () => {
  it('starts 3 masters with a synced replica each, and a killed master is replaced', async () => {
    const cluster = await startRedisCluster({ nodeTimeoutMs: 1000 });
    try {
      const masters = await cluster.masters();
      expect(masters).toHaveLength(3);
      expect(await cluster.replicas()).toHaveLength(3);
      const client = quiet(new Cluster(cluster.nodes, { clusterRetryStrategy: () => 100 }));
      // Keys spread over the three masters; hash-tagged ones land together.
      const owners = new Set<number>();
      for (let i = 0; i < 30; i++) {
        await client.set(`k${i}`, String(i));
        owners.add((await cluster.masterOf(`k${i}`)).port);
      }
      expect(owners.size).toBe(3);
      await client.mset('{t}a', '1', '{t}b', '2');
      expect(await client.mget('{t}a', '{t}b')).toEqual(['1', '2']);

      const victim = await cluster.masterOf('k0');
      // Replication is asynchronous: the replica must have k0 before the kill for the check below to hold.
      const acked = await askNode(victim, undefined, async (c) => {
        await c.set('k0', '0');
        return Number(await c.call('WAIT', '1', '5000'));
      });
      expect(acked).toBe(1);
      await victim.kill();
      await cluster.waitHealthy();
      const after = await cluster.masters();
      expect(after).toHaveLength(3);
      expect(after).not.toContain(victim);
      expect(await cluster.masterOf('k0')).not.toBe(victim);
      // The replica had synced before the kill: the value is on the promoted node.
      expect(await askNode(await cluster.masterOf('k0'), undefined, (c) => c.get('k0'))).toBe('0');

      // Back as a replica of the node that replaced it.
      await victim.restart();
      await cluster.waitHealthy();
      expect(await cluster.replicas()).toContain(victim);
      client.disconnect();
    } finally {
      await cluster.stop();
    }
    expect(cluster.servers.some(isAlive)).toBe(false);
  }, 60_000);
});

describe('Sentinel harness', () => {
  it('starts a primary, a synced replica and 3 Sentinels, and fails over when the primary dies', async () => {
    const set = await startRedisSentinel();
    try {
      const primary = await set.primary();
      expect(primary).toBe(set.servers[0]);
      const client = quiet(new Redis({ sentinels: set.sentinelNodes, name: set.name }));
      await client.set('k', 'v');
      await client.call('WAIT', '1', '1000');

      await primary.kill();
      await set.waitSynced();
      const next = await set.primary();
      expect(next).not.toBe(primary);
      // The client finds the new primary by itself.
      expect(await client.get('k')).toBe('v');
      await client.set('k2', 'v2');

      await primary.restart();
      await set.waitSynced();
      expect(await askNode(primary, undefined, async (c) => (await c.info('replication')).includes('role:slave'))).toBe(true);
      client.disconnect();
    } finally {
      await set.stop();
    }
  }, 60_000);
});
