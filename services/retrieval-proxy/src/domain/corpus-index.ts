import { sameStamp, type CorpusSnapshot, type CorpusStamp, type DocumentMeta } from './document-store.js';
import { matchesFilters, type Filters } from './filters.js';
import { dotAt, normalize } from './vectors.js';

interface IndexedDocument {
  meta: DocumentMeta;
  texts: string[];
  /** chunkCount rows of `dims` unit-length floats, one contiguous block. */
  matrix: Float32Array;
  dims: number;
}

export interface Hit {
  meta: DocumentMeta;
  chunkIndex: number;
  text: string;
  score: number;
}

export interface SearchOptions {
  limit: number;
  filters: Filters;
  scoreThreshold?: number | null | undefined;
  /** Hybrid ranking (pgvector only): the query's text, ranked by full text and fused with the vector ranking. */
  hybridText?: string | undefined;
}

export interface SearchOutcome {
  hits: Hit[];
  /** Chunks that passed the filters and the threshold, before the limit. */
  total: number;
  /** Chunks skipped because their vectors have another dimension than the query (another model). */
  skippedDimensionMismatch: number;
}

function indexDocument(meta: DocumentMeta, chunks: { text: string; vector: Float32Array }[]): IndexedDocument {
  const dims = chunks[0]?.vector.length ?? 0;
  const matrix = new Float32Array(dims * chunks.length);
  chunks.forEach((c, i) => {
    if (c.vector.length !== dims) throw new RangeError(`document ${meta.id}: chunk ${i} has ${c.vector.length} dims, expected ${dims}`);
    matrix.set(normalize(c.vector), i * dims);
  });
  return { meta, texts: chunks.map((c) => c.text), matrix, dims };
}

type TenantDocs = Map<string, IndexedDocument>;

/** A write's stamp with the active model and generation it left as they were (the first write sets the model). */
function carried(stamp: CorpusStamp, loaded: CorpusStamp | undefined): CorpusStamp {
  const model = loaded?.model ?? stamp.model;
  const generation = loaded?.generation ?? stamp.generation;
  return { epoch: stamp.epoch, version: stamp.version, ...(model !== undefined ? { model } : {}), ...(generation !== undefined ? { generation } : {}) };
}

/**
 * In-memory copy of the document index for brute-force cosine search. It is labelled with the corpus
 * stamp (epoch and version) it was loaded at; callers compare it with the stamp in Redis on every request
 * and reload when they differ (single-flight), so replicas never answer from an older corpus than Redis
 * holds, nor from the corpus of before a state reset whose version number came round again.
 * Documents are held per tenant, and a search only ever looks at the asking tenant's: the top k is taken among
 * that tenant's chunks alone.
 */
export class CorpusIndex {
  private tenants = new Map<string, TenantDocs>();
  private loaded: CorpusStamp | undefined;
  private reloading: Promise<void> | undefined;

  constructor(private readonly load: () => Promise<CorpusSnapshot>) {}

  get stamp(): CorpusStamp | undefined {
    return this.loaded;
  }

  /** The tenant's documents and chunks held, and the dimension of the vectors. */
  counts(tenant: string): { documents: number; chunks: number; dimensions: number | null } {
    let chunks = 0;
    let dimensions: number | null = null;
    const docs = this.tenants.get(tenant);
    for (const d of docs?.values() ?? []) {
      chunks += d.texts.length;
      dimensions ??= d.dims;
    }
    // The index's dimension, for a tenant that has no document yet: any other tenant's (all share the active model).
    if (dimensions === null) {
      for (const other of this.tenants.values()) {
        const first = other.values().next().value;
        if (first) {
          dimensions = first.dims;
          break;
        }
      }
    }
    return { documents: docs?.size ?? 0, chunks, dimensions };
  }

  /** Documents held, of every tenant. */
  get size(): number {
    let n = 0;
    for (const docs of this.tenants.values()) n += docs.size;
    return n;
  }

  /** Chunks held, of every tenant. */
  get chunkCount(): number {
    let n = 0;
    for (const docs of this.tenants.values()) for (const d of docs.values()) n += d.texts.length;
    return n;
  }

  /** Loads unconditionally (boot). */
  async reload(): Promise<void> {
    if (!this.reloading) {
      this.reloading = (async () => {
        try {
          const snapshot = await this.load();
          const next = new Map<string, TenantDocs>();
          for (const d of snapshot.documents) {
            let docs = next.get(d.tenant);
            if (!docs) next.set(d.tenant, (docs = new Map()));
            docs.set(d.meta.id, indexDocument(d.meta, d.chunks));
          }
          this.tenants = next;
          this.loaded = snapshot.stamp;
        } finally {
          this.reloading = undefined;
        }
      })();
    }
    return this.reloading;
  }

  /** Makes sure the copy is the corpus at `stamp` (the value just read from Redis) or newer. */
  async ensureStamp(stamp: CorpusStamp): Promise<void> {
    // Any difference reloads, a lower version or another epoch too (the state was reset). A reload that started
    // before this stamp was written may still carry the old label: try again, a bounded number of times.
    for (let attempt = 0; attempt < 3 && !sameStamp(this.loaded, stamp); attempt++) {
      await this.reload();
    }
  }

  /**
   * Applies this process's own write without a full reload, but only when the write is the very next
   * version of the same epoch (nobody else wrote in between) and no reload is running; otherwise the next
   * check reloads. It changes the maps in place: every reader (search, counts) runs to its end without an await, so
   * none sees a map half-changed (a copy of the tenant's map per write made a bulk ingest of n documents O(n^2)).
   */
  applyPut(tenant: string, doc: { meta: DocumentMeta; chunks: { text: string; vector: Float32Array }[] }, stamp: CorpusStamp): boolean {
    if (!this.follows(stamp)) return false;
    let docs = this.tenants.get(tenant);
    if (!docs) this.tenants.set(tenant, (docs = new Map()));
    docs.set(doc.meta.id, indexDocument(doc.meta, doc.chunks));
    this.loaded = carried(stamp, this.loaded);
    return true;
  }

  applyDelete(tenant: string, id: string, stamp: CorpusStamp): boolean {
    if (!this.follows(stamp)) return false;
    const docs = this.tenants.get(tenant);
    docs?.delete(id);
    if (docs?.size === 0) this.tenants.delete(tenant);
    this.loaded = carried(stamp, this.loaded);
    return true;
  }

  private follows(stamp: CorpusStamp): boolean {
    return !this.reloading && this.loaded !== undefined && this.loaded.epoch === stamp.epoch && this.loaded.version === stamp.version - 1;
  }

  /** The tenant's best chunks; no other tenant's document is looked at. */
  search(tenant: string, query: Float32Array, opts: SearchOptions): SearchOutcome {
    const q = normalize(query);
    const threshold = opts.scoreThreshold ?? -Infinity;
    const top = new TopHits(opts.limit);
    let total = 0;
    let skippedDimensionMismatch = 0;
    for (const doc of this.tenants.get(tenant)?.values() ?? []) {
      if (!matchesFilters(doc.meta, opts.filters)) continue;
      if (doc.dims !== q.length) {
        skippedDimensionMismatch += doc.texts.length;
        continue;
      }
      for (let i = 0; i < doc.texts.length; i++) {
        const score = Math.max(-1, Math.min(1, dotAt(q, doc.matrix, i * doc.dims, doc.dims)));
        if (score < threshold) continue;
        total++;
        top.offer(doc, i, score);
      }
    }
    return { hits: top.sorted(), total, skippedDimensionMismatch };
  }
}

/** Answer order: higher score first, then document id, then chunk index. */
function before(a: { score: number; id: string; chunk: number }, b: { score: number; id: string; chunk: number }): boolean {
  if (a.score !== b.score) return a.score > b.score;
  const byId = a.id.localeCompare(b.id);
  return byId !== 0 ? byId < 0 : a.chunk < b.chunk;
}

/**
 * The best `limit` chunks seen, in a heap whose root is the worst of them: each chunk costs one comparison with
 * the root, so a search over N chunks is O(N log limit) and keeps `limit` entries, not N.
 */
class TopHits {
  private readonly heap: Array<{ score: number; id: string; chunk: number; doc: IndexedDocument }> = [];
  constructor(private readonly limit: number) {}

  offer(doc: IndexedDocument, chunk: number, score: number): void {
    const h = this.heap;
    if (h.length >= this.limit) {
      const worst = h[0]!;
      if (score < worst.score || (score === worst.score && !before({ score, id: doc.meta.id, chunk }, worst))) return;
      h[0] = { score, id: doc.meta.id, chunk, doc };
      this.down(0);
      return;
    }
    h.push({ score, id: doc.meta.id, chunk, doc });
    this.up(h.length - 1);
  }

  sorted(): Hit[] {
    return [...this.heap]
      .sort((a, b) => (before(a, b) ? -1 : 1))
      .map((e) => ({ meta: e.doc.meta, chunkIndex: e.chunk, text: e.doc.texts[e.chunk] as string, score: e.score }));
  }

  /** Heap order: a parent comes after (is worse than) its children. */
  private up(i: number): void {
    const h = this.heap;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[p]!, h[i]!)) return;
      [h[p], h[i]] = [h[i]!, h[p]!];
      i = p;
    }
  }

  private down(i: number): void {
    const h = this.heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let worst = i;
      if (l < h.length && before(h[worst]!, h[l]!)) worst = l;
      if (r < h.length && before(h[worst]!, h[r]!)) worst = r;
      if (worst === i) return;
      [h[worst], h[i]] = [h[i]!, h[worst]!];
      i = worst;
    }
  }
}
