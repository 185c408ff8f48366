import type { AuthStore } from '@aicache/auth';
import { streamEntries, type Cache, type RedisClient } from '@aicache/cache';
import type { JobQueue, ScheduledKind } from '@aicache/jobs';
import type { RetrievalIndex } from './retrieval-index.js';

/** One snapshot: the cache's counters summed over every replica, and the corpus size, at one moment. */
export interface StatsSnapshot {
  id: string;
  at: string;
  cacheConnected: boolean;
  hits: number;
  misses: number;
  hitRate: number;
  sets: number;
  errors: number;
  categories: Record<string, { hits: number; misses: number; hit_rate: number; keys: number | null }>;
  /** null when the index could not be read at that moment. */
  documents: number | null;
  chunks: number | null;
}

/**
 * The stats history: a Redis stream on the state Redis capped at about `keep` entries (XADD MAXLEN ~, so Redis trims
 * whole nodes of the stream, cheaply), newest read first.
 */
export class StatsHistory {
  constructor(
    private readonly redis: RedisClient,
    readonly key: string,
    private readonly keep: number,
  ) {}

  async append(cache: Cache<string>, index: RetrievalIndex): Promise<StatsSnapshot> {
    const [stats, size] = await Promise.all([cache.stats(), index.size().catch(() => null)]);
    const s = stats.service_stats;
    const categories: StatsSnapshot['categories'] = {};
    for (const [name, c] of Object.entries(s.categories)) categories[name] = { hits: c.hits, misses: c.misses, hit_rate: c.hit_rate, keys: c.keys };
    const at = new Date().toISOString();
    const fields = {
      at,
      cacheConnected: stats.connected ? '1' : '0',
      hits: String(s.hits),
      misses: String(s.misses),
      hitRate: String(s.hit_rate),
      sets: String(s.sets),
      errors: String(s.errors),
      categories: JSON.stringify(categories),
      documents: size ? String(size.documents) : '',
      chunks: size ? String(size.chunks) : '',
    };
    const id = await this.redis.xadd(this.key, 'MAXLEN', '~', String(this.keep), '*', ...Object.entries(fields).flat());
    return parse(id ?? '', fields);
  }

  /** The newest `limit` snapshots, newest first. */
  async read(limit: number): Promise<StatsSnapshot[]> {
    const entries = await this.redis.xrevrange(this.key, '+', '-', 'COUNT', limit);
    return streamEntries(entries).map(({ id, fields }) => parse(id, fields));
  }
}

function parse(id: string, f: Record<string, string>): StatsSnapshot {
  const n = (v: string | undefined) => (v === undefined || v === '' ? null : Number(v));
  let categories: StatsSnapshot['categories'] = {};
  try {
    categories = JSON.parse(f.categories ?? '{}') as StatsSnapshot['categories'];
  } catch {
    // A hand-written entry: its figures stand without the categories.
  }
  return {
    id,
    at: f.at ?? new Date(Number(id.split('-')[0])).toISOString(),
    cacheConnected: f.cacheConnected === '1',
    hits: n(f.hits) ?? 0,
    misses: n(f.misses) ?? 0,
    hitRate: n(f.hitRate) ?? 0,
    sets: n(f.sets) ?? 0,
    errors: n(f.errors) ?? 0,
    categories,
    documents: n(f.documents),
    chunks: n(f.chunks),
  };
}

export interface HousekeepingDeps {
  history: StatsHistory;
  cache: Cache<string>;
  index: RetrievalIndex;
  /** The queue (read lazily: it is decorated when the jobs plugin registers). */
  jobs: () => JobQueue;
  auth: AuthStore;
  statsEveryMs: number;
  cleanupEveryMs: number;
  /** Keys looked at per run and per kind of leftover, and the page size of each SCAN. */
  maxKeys?: number;
  batch?: number;
}

/** The proxy's scheduled kinds: a stats snapshot, and the cleanup of what expiry and retention leave behind. */
export function housekeepingKinds(d: HousekeepingDeps): ScheduledKind[] {
  const bounds = { ...(d.maxKeys ? { maxKeys: d.maxKeys } : {}), ...(d.batch ? { batch: d.batch } : {}) };
  return [
    {
      name: 'stats-snapshot',
      summary: 'Appends the cache counters and the corpus size to the stats history',
      everyMs: d.statsEveryMs,
      run: async () => {
        const s = await d.history.append(d.cache, d.index);
        return { id: s.id, hits: s.hits, misses: s.misses, documents: s.documents, chunks: s.chunks };
      },
    },
    {
      name: 'cleanup',
      summary: "Removes job-list ids of removed jobs, finished jobs' cancel flags and users' references to expired sessions and keys",
      everyMs: d.cleanupEveryMs,
      run: async () => {
        const jobs = await d.jobs().sweep(bounds);
        const auth = await d.auth.sweepOrphans(bounds);
        return {
          jobIndexIds: jobs.staleIds,
          cancelFlags: jobs.cancelFlags,
          sessionRefs: auth.sessionRefs,
          keyRefs: auth.keyRefs,
          looked: { tenantLists: jobs.tenantLists, userSets: auth.userSets },
          // false: a bound was reached before the end (what was past it waits for a later run).
          complete: jobs.complete && auth.complete,
        };
      },
    },
  ];
}
