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
  /** Stores (or replaces) a document with its chunks; the stamp after the write. */
  put(doc: StoredDocument): Promise<CorpusStamp>;
  /** The stamp after the delete; undefined when there was no such document. */
  delete(id: string): Promise<CorpusStamp | undefined>;
  get(id: string): Promise<StoredDocument | undefined>;
  list(offset: number, limit: number): Promise<{ total: number; documents: DocumentMeta[] }>;
  /** The corpus stamp now: read on every cached request. */
  stamp(): Promise<CorpusStamp>;
  /** Gets ready to search the corpus at `stamp` while the query is being embedded (the Redis engine reloads its copy). */
  prepare?(stamp: CorpusStamp): Promise<void>;
  /** Ranks chunks against the corpus at `stamp` (just read) or newer. */
  search(query: Float32Array, opts: SearchOptions, stamp: CorpusStamp): Promise<SearchOutcome>;
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

  async put(doc: StoredDocument): Promise<CorpusStamp> {
    const stamp = await this.store.put(doc);
    this.copy.applyPut(doc, stamp);
    return stamp;
  }

  async delete(id: string): Promise<CorpusStamp | undefined> {
    const stamp = await this.store.delete(id);
    if (stamp !== undefined) this.copy.applyDelete(id, stamp);
    return stamp;
  }

  get(id: string) {
    return this.store.get(id);
  }

  list(offset: number, limit: number) {
    return this.store.list(offset, limit);
  }

  stamp() {
    return this.store.stamp();
  }

  prepare(stamp: CorpusStamp): Promise<void> {
    return this.copy.ensureStamp(stamp);
  }

  async search(query: Float32Array, opts: SearchOptions, stamp: CorpusStamp): Promise<SearchOutcome> {
    await this.copy.ensureStamp(stamp);
    return this.copy.search(query, opts);
  }

  async warmUp() {
    await this.copy.reload();
    return { documents: this.copy.size, corpus: this.copy.stamp };
  }
}
