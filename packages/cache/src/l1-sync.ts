import { randomUUID } from 'node:crypto';
import { Redis, type Cluster, type RedisOptions } from 'ioredis';
import { isCluster, type RedisClient } from './connection.js';
import type { L1Tier } from './l1.js';
import type { ErrorReporter } from './reporter.js';
import type { RedisRunner } from './runner.js';
import { bulkTimeout } from './invalidation.js';

/** The subscriber is PINGed this often; no PONG within PING_TIMEOUT_MS counts as a lost subscription. */
export const HEARTBEAT_MS = 1000;
export const PING_TIMEOUT_MS = 2000;
/** A write or delete of more keys than this is announced as "the whole category" (keeps messages small). */
export const MAX_KEYS_PER_MESSAGE = 256;

/** Channel of a service's L1 invalidations. Pub/sub ignores DB indexes, so it is named after the service. */
export function l1Channel(service: string): string {
  return `${service}:__l1`;
}

/** What replicas tell each other after a change in Redis: drop these keys, or the category (no keys), or every category (no category). */
export interface L1Message {
  origin: string;
  category?: string;
  keys?: string[];
  all?: true;
}

export interface L1SyncOptions {
  service: string;
  /**
   * The cache's client: duplicated for the subscriber (which the sync owns and closes), and used to publish. On a
   * Cluster the subscriber is a plain connection to one node (see L1Sync), moved to another node when it is lost.
   */
  client: RedisClient;
  runner: RedisRunner;
  reporter: ErrorReporter;
  tiers: Map<string, L1Tier>;
  retryStrategy: (times: number) => number;
}

/**
 * Keeps the L1 tiers of this replica consistent with Redis across replicas.
 *
 * Every change (write, delete, pattern, clear, tags) publishes an L1Message on `<service>:__l1` after Redis applied
 * it (writes and deletes in the same script or pipeline, so atomically with the change); every replica drops what
 * it names, except the one that sent it (it updated its own tiers itself).
 *
 * The tiers serve only while the subscription is known to be live: on any sign of trouble (close, end,
 * reconnecting, error, a PING without answer) every tier is cleared and disabled, and enabled again only once a
 * SUBSCRIBE is confirmed on the new connection; reads meanwhile go to Redis. So a replica never serves what it may
 * have missed a message about, past the few seconds it takes to notice a dead connection. A publish that fails
 * (bounded, best-effort) leaves the other replicas' copies to expire with the L1 cap (CategorySpec.l1TtlSeconds).
 *
 * On a Cluster the channel stays a classic one: PUBLISH, from any node, reaches the subscribers of every node, so
 * the WRITE script keeps publishing in the same script as its write (atomic with it) whatever slot the entries are
 * in, and one subscription on any one node hears every write. Sharded pub/sub would confine each message to one
 * shard, but a script may only SPUBLISH to a channel in its keys' slot: that means a channel per bucket (256
 * SSUBSCRIBEs per replica) or a publish outside the script (no longer atomic with the write). The cost kept: every
 * message crosses the cluster bus to every node, which for cache writes (not a chat fan-out) is small.
 */
export class L1Sync {
  readonly channel: string;
  /** Identifies this replica's messages. */
  readonly origin = randomUUID();
  private readonly sub: Redis;
  /** Bumped on every loss: a subscribe or ping answered for an older connection is ignored. */
  private epoch = 0;
  private subscribedEpoch = -1;
  private subscribingEpoch = -1;
  private pingingEpoch = -1;
  private closed = false;
  private readonly timer: NodeJS.Timeout;
  private readonly onLost = (): void => this.lost();
  private readonly onError = (err: Error): void => {
    this.opts.reporter.report(err, { service: this.opts.service, op: 'l1-subscriber' });
    this.lost();
  };
  private readonly onReady = (): void => this.subscribe();
  private readonly onMessage = (channel: string, text: string): void => {
    if (channel === this.channel) this.receive(text);
  };

  constructor(private readonly opts: L1SyncOptions) {
    this.channel = l1Channel(opts.service);
    const override: Partial<RedisOptions> = {
      lazyConnect: false,
      enableOfflineQueue: false,
      // Pending commands are rejected on a disconnect rather than resent on the next connection.
      maxRetriesPerRequest: 0,
      autoResubscribe: false,
      autoResendUnfulfilledCommands: false,
      // The subscriber's commands do not go through the runner: ioredis bounds them (a SUBSCRIBE that never answers
      // must fail, so that the heartbeat tries again), unless the handed client says otherwise.
      commandTimeout: commandTimeoutOf(opts.client) ?? Math.max(opts.runner.timeoutMs, 2000),
      // Must keep trying whatever the handed client's strategy is: without a subscription there is no L1.
      retryStrategy: opts.retryStrategy,
      connectionName: `${connectionNameOf(opts.client) || opts.service}:l1`,
    };
    this.sub = isCluster(opts.client) ? subscriberOnNode(opts.client, override) : opts.client.duplicate(override);
    this.sub.on('ready', this.onReady);
    this.sub.on('close', this.onLost);
    this.sub.on('end', this.onLost);
    this.sub.on('reconnecting', this.onLost);
    this.sub.on('error', this.onError);
    this.sub.on('message', this.onMessage);
    this.timer = setInterval(() => this.tick(), HEARTBEAT_MS);
    this.timer.unref();
  }

  /** Message text for keys of a category (or the whole category past MAX_KEYS_PER_MESSAGE, or without keys). */
  message(category?: string, keys?: string[]): string {
    const m: L1Message = { origin: this.origin };
    if (category !== undefined) m.category = category;
    if (keys && keys.length > 0 && keys.length <= MAX_KEYS_PER_MESSAGE) m.keys = keys;
    else m.all = true;
    return JSON.stringify(m);
  }

  /** Best-effort, bounded publish after a change made outside a script or pipeline of ours (SCAN-based ones). */
  async publish(category?: string): Promise<void> {
    const text = this.message(category);
    try {
      await this.opts.runner.run((c) => c.publish(this.channel, text), bulkTimeout(this.opts.runner));
    } catch (err) {
      this.opts.reporter.report(err, { service: this.opts.service, op: 'l1-publish', ...(category ? { category } : {}) });
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.lost();
    this.sub.off('ready', this.onReady);
    this.sub.off('message', this.onMessage);
    this.sub.off('error', this.onError);
    this.sub.on('error', () => undefined);
    if (this.sub.status === 'end') return;
    const ended = new Promise((r) => this.sub.once('end', r));
    this.sub.disconnect();
    await Promise.race([ended, new Promise((r) => setTimeout(r, 1000).unref())]);
  }

  private lost(): void {
    this.epoch++;
    for (const t of this.opts.tiers.values()) t.disable();
  }

  private subscribe(): void {
    const epoch = this.epoch;
    if (this.closed || this.sub.status !== 'ready' || this.subscribingEpoch === epoch || this.subscribedEpoch === epoch) return;
    this.subscribingEpoch = epoch;
    this.sub.subscribe(this.channel).then(
      () => {
        if (this.closed || epoch !== this.epoch || this.sub.status !== 'ready') return;
        this.subscribedEpoch = epoch;
        for (const t of this.opts.tiers.values()) t.enable();
      },
      (err: unknown) => {
        // e.g. NOPERM (an ACL without this channel): L1 stays off; the heartbeat tries again.
        if (this.subscribingEpoch === epoch) this.subscribingEpoch = -1;
        this.opts.reporter.report(err, { service: this.opts.service, op: 'l1-subscribe' });
      },
    );
  }

  /** Subscribes where a try failed; PINGs a live subscription so that a silently dead connection is noticed. */
  private tick(): void {
    if (this.closed || this.sub.status !== 'ready') return;
    const epoch = this.epoch;
    if (this.subscribedEpoch !== epoch) {
      this.subscribe();
      return;
    }
    if (this.pingingEpoch === epoch) return;
    this.pingingEpoch = epoch;
    let answered = false;
    const timer = setTimeout(() => {
      if (answered || epoch !== this.epoch) return;
      this.lost();
      this.sub.disconnect(true);
    }, PING_TIMEOUT_MS);
    timer.unref();
    this.sub.ping().then(
      () => undefined,
      () => undefined,
    ).finally(() => {
      answered = true;
      clearTimeout(timer);
      if (this.pingingEpoch === epoch) this.pingingEpoch = -1;
    });
  }

  private receive(text: string): void {
    let m: Partial<L1Message> | undefined;
    try {
      m = JSON.parse(text) as Partial<L1Message>;
    } catch {
      m = undefined;
    }
    if (m && m.origin === this.origin) return;
    // Anything unreadable on our channel clears every tier: dropping too much is only a few misses.
    const targets = m && typeof m.category === 'string' ? [this.opts.tiers.get(m.category)] : [...this.opts.tiers.values()];
    const keys = m && !m.all && Array.isArray(m.keys) ? m.keys.filter((k): k is string => typeof k === 'string') : undefined;
    for (const t of targets) {
      if (!t) continue;
      if (keys) t.evict(keys);
      else t.evictAll();
    }
  }
}

function commandTimeoutOf(client: RedisClient): number | undefined {
  return isCluster(client) ? client.options.redisOptions?.commandTimeout : client.options.commandTimeout;
}

function connectionNameOf(client: RedisClient): string | undefined {
  return isCluster(client) ? client.options.redisOptions?.connectionName : client.options.connectionName;
}

/** Nodes of the Cluster as the client knows them now. */
function clusterAddresses(cluster: Cluster): Array<{ host: string; port: number }> {
  return cluster.nodes('all').map((n) => ({ host: String(n.options.host), port: Number(n.options.port) }));
}

/**
 * A plain connection to one node of the Cluster, with the nodes' settings, made once the Cluster client knows its
 * nodes. Each time it is lost it reconnects to the next node the Cluster knows (a killed node must not leave L1
 * off for good).
 */
function subscriberOnNode(cluster: Cluster, override: Partial<RedisOptions>): Redis {
  const sub = new Redis({ ...cluster.options.redisOptions, ...override, lazyConnect: true });
  let next = -1;
  const moveOn = (): boolean => {
    const nodes = clusterAddresses(cluster);
    if (nodes.length === 0) return false;
    next = next < 0 ? Math.floor(Math.random() * nodes.length) : (next + 1) % nodes.length;
    const node = nodes[next] as { host: string; port: number };
    // The connector reads host and port from these options at every connect.
    sub.options.host = node.host;
    sub.options.port = node.port;
    return true;
  };
  sub.on('reconnecting', moveOn);
  const start = (): void => {
    if (sub.status === 'wait' && moveOn()) sub.connect().catch(() => undefined);
  };
  if (cluster.status === 'ready') start();
  else cluster.once('ready', start);
  return sub;
}
