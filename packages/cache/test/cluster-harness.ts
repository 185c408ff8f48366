import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { startRedisServer, type RedisServer } from '@aicache/test-redis';

// A stand-in for @aicache/test-redis startRedisCluster until it lands, with the same handle (the part these tests use).

const run = promisify(execFile);

export interface LocalCluster {
  readonly servers: RedisServer[];
  readonly nodes: { host: string; port: number }[];
  masters(): Promise<RedisServer[]>;
  waitHealthy(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

async function clusterNodes(servers: RedisServer[]): Promise<string> {
  for (const s of servers) {
    const c = new Redis({ host: s.host, port: s.port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 500 });
    c.on('error', () => undefined);
    try {
      await c.connect();
      return String(await c.cluster('NODES'));
    } catch {
      // try the next node
    } finally {
      c.disconnect();
    }
  }
  throw new Error('no cluster node answered');
}

export async function startLocalCluster(opts: { masters?: number; replicasPerMaster?: number; nodeTimeoutMs?: number } = {}): Promise<LocalCluster> {
  const masters = opts.masters ?? 3;
  const replicas = opts.replicasPerMaster ?? 1;
  const servers = await Promise.all(
    Array.from({ length: masters * (1 + replicas) }, () =>
      startRedisServer({ args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', String(opts.nodeTimeoutMs ?? 5000)] }),
    ),
  );
  await run('redis-cli', ['--cluster', 'create', ...servers.map((s) => `${s.host}:${s.port}`), '--cluster-replicas', String(replicas), '--cluster-yes']);
  const handle: LocalCluster = {
    servers,
    nodes: servers.map((s) => ({ host: s.host, port: s.port })),
    async masters() {
      const text = await clusterNodes(servers);
      const ports = text
        .split('\n')
        .filter((l) => / master /.test(` ${l.split(' ')[2]?.replace(/,/g, ' ')} `) && !l.includes('fail'))
        .map((l) => Number(l.split(' ')[1]?.split('@')[0]?.split(':')[1]));
      return servers.filter((s) => ports.includes(s.port));
    },
    async waitHealthy(timeoutMs = 20_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        let ok = true;
        for (const s of servers) {
          const c = new Redis({ host: s.host, port: s.port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 500 });
          c.on('error', () => undefined);
          try {
            await c.connect();
            if (!String(await c.cluster('INFO')).includes('cluster_state:ok')) ok = false;
          } catch {
            // a dead node does not count
          } finally {
            c.disconnect();
          }
        }
        if (ok) return;
        if (Date.now() > until) throw new Error('cluster not healthy in time');
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    async stop() {
      await Promise.all(servers.map((s) => s.stop().catch(() => s.kill())));
    },
  };
  await handle.waitHealthy();
  return handle;
}
