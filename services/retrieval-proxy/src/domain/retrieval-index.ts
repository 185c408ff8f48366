import { StateUnavailable } from '@aicache/service-kit';
import { CorpusIndex, type SearchOptions, type SearchOutcome } from './corpus-index.js';
import type { CorpusStamp, DocumentMeta, DocumentStore, StoredDocument } from './document-store.js';

/**
 * Where documents, their chunks and vectors live, and how chunks are ranked against a query. Two engines:
 * the state Redis with an in-process copy searched exactly ('redis', nothing to install), and PostgreSQL with
 * pgvector's HNSW index ('pgvector'). Either way every write moves the corpus stamp in the same transaction, and
 * cached answers are keyed by the stamp, so none from before a write is served after it.
 */
export interface RetrievalIndex {
  readonly engine: 'redis' | 'pgvector';
  /** Stores (or replaces) the tenant's document with its chunks; the stamp after the write. */
  put(tenant: string, doc: StoredDocument): Promise<CorpusStamp>;
  /** The stamp after the delete; undefined when the tenant has no such document (another tenant's is not seen). */
  delete(tenant: string, id: string): Promise<CorpusStamp | undefined>;
  get(tenant: string, id: string): Promise<StoredDocument | undefined>;
  /** The tenant's documents in id order, and how many it has. */
  list(tenant: string, offset: number, limit: number): Promise<{ total: number; documents: DocumentMeta[] }>;
  /** The corpus stamp now (one for all tenants: any write moves it): read on every cached request. */
  stamp(): Promise<CorpusStamp>;
  /**
   * The stamp of the corpus this process can still answer for when the stamp cannot be read (its store is failing
   * over or away): the Redis engine's loaded copy; pgvector's last stamp read (cached answers only). Undefined when
   * there is none.
   */
  lastStamp(): CorpusStamp | undefined;
  /** Gets ready to search the corpus at `stamp` while the query is being embedded (the Redis engine reloads its copy). */
  prepare?(stamp: CorpusStamp): Promise<void>;
  /** Ranks the tenant's chunks, and no other's, against the corpus at `stamp` (just read) or newer. */
  search(tenant: string, query: Float32Array, opts: SearchOptions, stamp: CorpusStamp): Promise<SearchOutcome>;
  /** Documents and chunks of every tenant, at the corpus's current stamp (housekeeping's snapshots). */
  size(): Promise<{ documents: number; chunks: number }>;
  /** Boot work (load, migrate); a failure is logged by the caller and retried by the first request. */
  warmUp(): Promise<{ documents: number } & Record<string, unknown>>;
  close?(): Promise<void>;
}

/** The state Redis holds the documents; each process searches its own copy, reloaded when the stamp moves. */
export class RedisRetrievalIndex implements RetrievalIndex {
  readonly engine = 'redis';
  readonly copy: CorpusIndex;

  constructor(private readonly store: DocumentStore) {
    this.copy = new CorpusIndex(() => store.loadAll());
  }

  async put(tenant: string, doc: StoredDocument): Promise<CorpusStamp> {
    const stamp = await this.store.put(tenant, doc);
    this.copy.applyPut(tenant, doc, stamp);
    return stamp;
  }

  async delete(tenant: string, id: string): Promise<CorpusStamp | undefined> {
    const stamp = await this.store.delete(tenant, id);
    if (stamp !== undefined) this.copy.applyDelete(tenant, id, stamp);
    return stamp;
  }

  get(tenant: string, id: string) {
    return this.store.get(tenant, id);
  }

  list(tenant: string, offset: number, limit: number) {
    return this.store.list(tenant, offset, limit);
  }

  stamp() {
    return this.store.stamp();
  }

  lastStamp() {
    return this.copy.stamp;
  }

  prepare(stamp: CorpusStamp): Promise<void> {
    return this.caughtUp(stamp);
  }

  /**
   * The copy at `stamp`. With a copy already loaded, a request waits for a reload no longer than a state call may
   * take (the reload goes on): past that it is StateUnavailable, and the caller answers from the copy it has. With
   * none yet (boot), it waits for the load.
   */
  private async caughtUp(stamp: CorpusStamp): Promise<void> {
    const reload = this.copy.ensureStamp(stamp);
    if (this.copy.stamp === undefined) return reload;
    const limit = this.store.calls.timeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new StateUnavailable('document index reload', `not done within ${limit} ms`)), limit);
    });
    try {
      await Promise.race([reload, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  async search(tenant: string, query: Float32Array, opts: SearchOptions, stamp: CorpusStamp): Promise<SearchOutcome> {
    await this.caughtUp(stamp);
    return this.copy.search(tenant, query, opts);
  }

  async size() {
    await this.caughtUp(await this.stamp());
    return { documents: this.copy.size, chunks: this.copy.chunkCount };
  }

  async warmUp() {
    await this.copy.reload();
    return { documents: this.copy.size, corpus: this.copy.stamp };
  }
}
