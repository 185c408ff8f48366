import { StateUnavailable } from '@aicache/service-kit';
import { CorpusIndex, type SearchOptions, type SearchOutcome } from './corpus-index.js';
import { chunkIdentity, ModelChanged, type CorpusStamp, type DocumentMeta, type DocumentStore, type ReembedState, type StoredDocument } from './document-store.js';

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
  /**
   * The corpus stamp now (one for all tenants: any write moves its version), read on every cached request; with
   * `tenant`, also that tenant's version, which only its own writes move (what its cached answers are keyed by).
   */
  stamp(tenant?: string): Promise<CorpusStamp>;
  /**
   * The stamp of the corpus this process can still answer for when the stamp cannot be read (its store is failing
   * over or away): the Redis engine's loaded copy; pgvector's last stamp read (cached answers only). Undefined when
   * there is none.
   */
  lastStamp(): CorpusStamp | undefined;
  /** Gets ready to search the corpus at `stamp` while the query is being embedded (the Redis engine reloads its copy). */
  prepare?(stamp: CorpusStamp): Promise<void>;
  /**
   * Ranks the tenant's chunks, and no other's, against the corpus at `stamp` (just read) or newer. ModelChanged when
   * the corpus it ranks has another active model than `stamp.model` (a re-embed switched since the stamp was read).
   */
  search(tenant: string, query: Float32Array, opts: SearchOptions, stamp: CorpusStamp): Promise<SearchOutcome>;
  /** Documents and chunks of every tenant, at the corpus's current stamp (housekeeping's snapshots). */
  size(): Promise<{ documents: number; chunks: number }>;
  /** What GET /api/v1/index shows: the active model and dimensions, the tenant's documents and chunks. */
  info(tenant: string): Promise<IndexInfo>;
  /** The re-embed of every document with another model (see the reembed job). */
  readonly reembed: Reembeddable;
  /** Boot work (load, migrate); a failure is logged by the caller and retried by the first request. */
  warmUp(): Promise<{ documents: number } & Record<string, unknown>>;
  close?(): Promise<void>;
}

export interface IndexInfo {
  engine: 'redis' | 'pgvector';
  /** null before the first ingest. */
  model: string | null;
  dimensions: number | null;
  documents: number;
  chunks: number;
  reembed?: { job: string; model: string; dimensions: number };
  /** pgvector: the HNSW graph of the index in use (the configured one while none is built yet) and the search's ef. */
  hnsw?: { m: number; efConstruction: number; efSearch: number; built: boolean };
}

/** A document as a re-embed walks it: its chunk texts, and whether the job already staged them (a resumed run). */
export interface ReembedDoc {
  tenant: string;
  meta: DocumentMeta;
  texts: string[];
  staged: boolean;
}

export interface DocRef {
  tenant: string;
  id: string;
  chunks: number;
}

/**
 * A re-embed as the index does it: a staging generation of vectors that searches do not read, filled document by
 * document, then made the live one (with its model) in one atomic step that only succeeds when no document was written
 * since it was staged. One job holds the staging generation at a time.
 */
export interface Reembeddable {
  state(): Promise<ReembedState | undefined>;
  /** Claims the staging generation for the job ('resumed' when it already held it; 'busy' names the job that does). */
  claim(state: ReembedState): Promise<{ outcome: 'claimed' | 'resumed' | 'busy'; holder: string }>;
  /** Every document of every tenant, in a stable order. */
  refs(): Promise<DocRef[]>;
  /** The documents' texts (documents gone meanwhile are left out). */
  load(job: string, refs: Array<{ tenant: string; id: string }>): Promise<ReembedDoc[]>;
  /** -1: the job lost the staging generation; 0: the document changed or went meanwhile (staged again later); 1: staged. */
  stage(job: string, tenant: string, meta: DocumentMeta, model: string, vectors: Float32Array[]): Promise<-1 | 0 | 1>;
  /** Documents written since they were staged (or never staged), at most `max`; a document gone is dealt with here. */
  pending(job: string, max: number): Promise<Array<{ tenant: string; id: string }>>;
  /** Work before the switch that needs every vector staged (pgvector builds the HNSW index of the new vectors). */
  settle(job: string): Promise<void>;
  /** The switch; 'pending' when documents changed since the last catch-up. */
  switchModel(job: string): Promise<{ outcome: 'switched'; stamp: CorpusStamp } | { outcome: 'pending'; count: number } | { outcome: 'lost' }>;
  /** Drops the staged generation and the job's claim (cancel, failure). */
  abort(job: string): Promise<void>;
}

/** The state Redis holds the documents; each process searches its own copy, reloaded when the stamp moves. */
export class RedisRetrievalIndex implements RetrievalIndex {
  readonly engine = 'redis';
  readonly copy: CorpusIndex;
  readonly reembed: Reembeddable;

  constructor(private readonly store: DocumentStore) {
    this.copy = new CorpusIndex(() => store.loadAll());
    this.reembed = new RedisReembed(store);
  }

  async info(tenant: string): Promise<IndexInfo> {
    const stamp = await this.store.stamp();
    await this.caughtUp(stamp);
    const counts = this.copy.counts(tenant);
    const running = await this.store.reembedState();
    return {
      engine: this.engine,
      model: stamp.model ?? null,
      dimensions: counts.dimensions,
      documents: counts.documents,
      chunks: counts.chunks,
      ...(running ? { reembed: { job: running.job, model: running.model, dimensions: running.dimensions } } : {}),
    };
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

  stamp(tenant?: string) {
    return this.store.stamp(tenant);
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
    const held = this.copy.stamp?.model;
    if (held !== undefined && held !== stamp.model) throw new ModelChanged(held);
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

/** The Redis engine's re-embed: generation fields in each document's hash, a dirty set, Lua for the stage and the switch. */
class RedisReembed implements Reembeddable {
  constructor(private readonly store: DocumentStore) {}

  state() {
    return this.store.reembedState();
  }

  async claim(state: ReembedState) {
    const { outcome, holder } = await this.store.claimReembed(state);
    return { outcome, holder };
  }

  async refs(): Promise<DocRef[]> {
    const out: DocRef[] = [];
    for (const tenant of await this.store.tenants()) {
      const ids = await this.store.ids(tenant);
      for (let i = 0; i < ids.length; i += 200) {
        for (const d of await this.store.texts(tenant, ids.slice(i, i + 200), 0)) {
          if (d) out.push({ tenant, id: d.id, chunks: d.meta.chunkCount });
        }
      }
    }
    return out;
  }

  async load(job: string, refs: Array<{ tenant: string; id: string }>): Promise<ReembedDoc[]> {
    const state = await this.store.reembedState();
    if (!state || state.job !== job) return [];
    const byTenant = new Map<string, string[]>();
    for (const r of refs) byTenant.set(r.tenant, [...(byTenant.get(r.tenant) ?? []), r.id]);
    const out: ReembedDoc[] = [];
    for (const [tenant, ids] of byTenant) {
      for (const d of await this.store.texts(tenant, ids, state.generation)) {
        if (!d) continue;
        const staged = d.staged ? (JSON.parse(d.staged) as { job?: string; identity?: string }) : undefined;
        out.push({ tenant, meta: d.meta, texts: d.texts, staged: staged?.job === job && staged.identity === chunkIdentity(d.meta) });
      }
    }
    return out;
  }

  stage(job: string, tenant: string, meta: DocumentMeta, model: string, vectors: Float32Array[]) {
    return this.store.stage(job, tenant, meta, model, vectors);
  }

  async pending(job: string, max: number) {
    const dirty = await this.store.dirty(max);
    const out: Array<{ tenant: string; id: string }> = [];
    for (const d of dirty) {
      const [doc] = await this.store.texts(d.tenant, [d.id], 0);
      // Gone: the stage script drops the mark, unless the document came back meanwhile (then it stays dirty).
      if (!doc) await this.store.dropDirtyIfGone(job, d.tenant, d.id);
      else out.push(d);
    }
    return out;
  }

  async settle(): Promise<void> {}

  async switchModel(job: string) {
    const r = await this.store.switchGeneration(job);
    if (r.outcome === 'dirty') return { outcome: 'pending' as const, count: r.count };
    if (r.outcome === 'lost') return r;
    // The old generation's vectors are read by no one now (replicas reload at the new stamp).
    await this.store.dropGeneration(r.old).catch(() => undefined);
    return { outcome: 'switched' as const, stamp: r.stamp };
  }

  async abort(job: string): Promise<void> {
    const state = await this.store.reembedState();
    if (!state || state.job !== job) return;
    if (await this.store.releaseReembed(job)) await this.store.dropGeneration(state.generation);
  }
}
