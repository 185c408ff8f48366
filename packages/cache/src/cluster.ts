import calculateSlot from 'cluster-key-slot';
import type { Cluster, Redis } from 'ioredis';

/** The Redis Cluster slot of a key (CRC16 of its hash tag, or of the whole key without one). */
export function slotOf(key: string | Buffer): number {
  return calculateSlot(key);
}

/**
 * Items grouped by the node set that serves their key's slot now, as ioredis groups a pipeline's commands (a
 * pipeline may hold keys of several slots, all served by one master). A slot the client does not know yet gets a
 * group of its own: the client routes it, and follows a MOVED.
 */
export function groupByNode<T>(client: Cluster, items: readonly T[], keyOf: (item: T) => string): T[][] {
  // ioredis checks a pipeline against its own (internal) slot -> group map, which a MOVED updates for one slot
  // without the replicas: grouping by that map is what its check accepts. The public slot table is the fallback.
  const bySlot = (client as unknown as { _groupsBySlot?: Array<number | undefined> })._groupsBySlot;
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const slot = slotOf(keyOf(item));
    const group = bySlot ? bySlot[slot] : undefined;
    const owner = group !== undefined ? `g:${group}` : bySlot ? `slot:${slot}` : (client.slots[slot]?.join(';') ?? `slot:${slot}`);
    let g = groups.get(owner);
    if (!g) groups.set(owner, (g = []));
    g.push(item);
  }
  return [...groups.values()];
}

/** Items grouped by a key function, in first-seen order. */
export function groupBy<T>(items: readonly T[], keyOf: (item: T) => string | number): T[][] {
  const groups = new Map<string | number, T[]>();
  for (const item of items) {
    const k = keyOf(item);
    let g = groups.get(k);
    if (!g) groups.set(k, (g = []));
    g.push(item);
  }
  return [...groups.values()];
}

/**
 * The masters the client knows now. Throws while it knows none (not connected yet, or the cluster is down): an
 * invalidation that scanned no node must fail, not answer "0 removed".
 */
export function mastersOf(client: Cluster): Redis[] {
  const masters = client.nodes('master');
  if (client.status !== 'ready' || masters.length === 0) throw new Error(`Redis Cluster not ready (status ${client.status}, ${masters.length} masters known)`);
  return masters;
}

/**
 * Which node serves which slots, as the masters themselves say it (CLUSTER NODES, their own line), with the slots
 * they are migrating or importing in brackets. Two equal fingerprints around a SCAN of every master, neither with a
 * slot in motion, mean no key moved between nodes meanwhile.
 */
export async function slotFingerprint(masters: Redis[], call: <T>(op: () => Promise<T>) => Promise<T>): Promise<string> {
  const lines = await Promise.all(
    masters.map(async (m) => {
      const text = String(await call(() => m.cluster('NODES')));
      const own = text.split('\n').find((l) => l.includes('myself')) ?? '';
      return own.split(' ').slice(8).join(' ') + '@' + own.split(' ')[0];
    }),
  );
  return lines.sort().join('|');
}

/** A slot being moved shows in CLUSTER NODES as `[slot->-node]` or `[slot-<-node]`. */
export function slotInMotion(fingerprint: string): boolean {
  return fingerprint.includes('[');
}
