import { randomUUID } from 'node:crypto';
import type { CategoryCache } from '@aicache/cache';
import type { ContextRequest, SearchRequest } from '@aicache/contracts';
import { errors, StateUnavailable } from '@aicache/service-kit';
import { chunkText, defaultChunkOverlap, textSha256 } from '@aicache/text';
import { normalizeRequest, retrievalCacheKey, type NormalizedRequest } from './cache-keys.js';
import { buildContext } from './context.js';
import type { Hit } from './corpus-index.js';
import { ModelChanged, sameStamp, type CorpusStamp, type DocumentMeta, type StoredChunk } from './document-store.js';
import type { RetrievalIndex } from './retrieval-index.js';
import { RESERVED_FILTER_KEYS, type Metadata } from './filters.js';
import type { Embedder } from './embedder.js';

export const MAX_TEXT_BYTES = 1_048_576;
const DEFAULT_CHUNK_SIZE = 800;
/** The worker takes up to 2048 inputs a call. */
export const EMBED_INPUTS_PER_CALL = 2048;
/** Tenants whose last stamp read a process keeps for its one-trip guess (past it the memory starts again). */
const LAST_READ_TENANTS = 10_000;

interface Prepared {
  texts: string[];
  metadata: Metadata;
  chunkSize: number;
  chunkOverlap: number;
}

/** One document of an ingestMany: stored, or refused for its input. */
export type BatchOutcome =
  | { ok: true; id: string; chunkCount: number; corpusVersion: number }
  | { ok: false; id?: string; message: string };

export interface IngestInput {
  id?: string | undefined;
  title: string;
  text: string;
  source?: string | undefined;
  metadata?: Metadata | undefined;
  chunkSize?: number | undefined;
  chunkOverlap?: number | undefined;
}

/** What a call into the service carries for the worker calls it may make. */
export interface PeerCall {
  requestId?: string | undefined;
  /**
   * The headers that prove to the worker whom the call acts for (a service token for the request's principal).
   * Asked for only when the worker is called: a cached answer needs none.
   */
  credentials?: (() => Promise<Record<string, string>>) | undefined;
}

/** The embedder's options for a call: its request id, credentials and model ('' = the embedder's own). */
async function embedOptions(call: PeerCall, timeoutMs?: number, model = '') {
  const headers = call.credentials ? await call.credentials() : undefined;
  return {
    ...(call.requestId ? { requestId: call.requestId } : {}),
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    ...(headers && Object.keys(headers).length > 0 ? { headers } : {}),
    ...(model ? { model } : {}),
  };
}

export interface CachedAnswer {
  body: Buffer;
  /** True when the answer came from the cache (the loader did not run). */
  hit: boolean;
  /**
   * 'last-known' when the corpus stamp could not be read (the state store is failing over or away) and the answer is
   * for the corpus this process last knew: it may miss a write acknowledged in the meantime.
   */
  corpus: 'current' | 'last-known';
  /** The embedding model the answer was ranked with (the index's active one; '' = the worker's default). */
  model: string;
}

export interface RetrievalOptions {
  /** Where documents live and how chunks are ranked (the Redis-held engine or pgvector). */
  index: RetrievalIndex;
  embedder: Embedder;
  searchCache: CategoryCache;
  contextCache: CategoryCache;
  /** Model asked of the worker; '' = its default. */
  model: string;
  maxChunksPerDocument: number;
  /** Hybrid ranking for requests that do not say (pgvector only; RETRIEVAL_HYBRID). */
  hybrid?: boolean;
  /** Timeout of the ingest's embeddings call. */
  ingestTimeoutMs: number;
  logger?: { warn(obj: object, msg?: string): void; info(obj: object, msg?: string): void };
}

function publicDocument(meta: DocumentMeta) {
  return {
    id: meta.id,
    title: meta.title,
    ...(meta.source !== undefined ? { source: meta.source } : {}),
    metadata: meta.metadata,
    createdAt: meta.createdAt,
    chunkCount: meta.chunkCount,
    contentHash: meta.contentHash,
    model: meta.model,
  };
}

/** The citation of the result at `rank` (1-based), as `[rank]` would cite it. */
function citationOf(hit: Hit, rank: number) {
  return {
    id: rank,
    documentId: hit.meta.id,
    title: hit.meta.title,
    ...(hit.meta.source !== undefined ? { source: hit.meta.source } : {}),
    chunkIndex: hit.chunkIndex,
  };
}

/**
 * Documents, search and context over the state-held index. Cached answers are keyed by the whole
 * normalized request plus the corpus stamp read from Redis on every request, so an ingest or delete
 * (which bumps the version in the same script) makes every older answer unreachable at once, and so
 * does a state reset (a new epoch). State Redis trouble is the kit's StateUnavailable (503, nothing written).
 * Every call acts for one tenant (the route's `tenantOf(request)`): documents, ids, searches and cached answers are
 * the tenant's own, and another tenant's document id is answered exactly as an unknown one.
 */
export class RetrievalService {
  readonly index: RetrievalIndex;

  constructor(private readonly opts: RetrievalOptions) {
    this.index = opts.index;
  }

  /** The model documents and queries are embedded with: the index's active one, else the configured one. */
  private modelOf(stamp: CorpusStamp | undefined): string {
    return stamp?.model ?? this.opts.model;
  }

  /** The active model now, to embed an ingest with (the index refuses another, see storeEmbedded). */
  private async ingestModel(): Promise<string> {
    return this.modelOf(await this.index.stamp());
  }

  async ingest(tenant: string, input: IngestInput, call: PeerCall = {}) {
    const prepared = this.prepare(input);
    const model = await this.ingestModel();
    // One worker call for every chunk; a dead worker fails here, before anything is written.
    const embeddings = await this.opts.embedder.embed(prepared.texts, await embedOptions(call, this.opts.ingestTimeoutMs, model));
    return this.storeEmbedded(tenant, input, prepared, embeddings.vectors, embeddings.model, model, call);
  }

  /**
   * Stores vectors the worker made as `model` when asked for `asked`. When the index refuses them for another active
   * model than the one asked for (a re-embed switched since), embeds the chunks again with the active one and stores
   * them, once; a refusal for the very model asked for (a worker answering another) is the client's 409 as it is.
   */
  private async storeEmbedded(tenant: string, input: IngestInput, p: Prepared, vectors: Float32Array[], model: string, asked: string, call: PeerCall) {
    try {
      return await this.store(tenant, input, p, vectors, model);
    } catch (err) {
      const active = (err as { active?: unknown }).active;
      if (typeof active !== 'string' || active === asked || active === model) throw err;
      const again = await this.opts.embedder.embed(p.texts, await embedOptions(call, this.opts.ingestTimeoutMs, active));
      return this.store(tenant, input, p, again.vectors, again.model);
    }
  }

  /**
   * Ingests many documents with as few worker calls as their chunks allow (up to EMBED_INPUTS_PER_CALL inputs each),
   * then stores them one by one. A document with bad input (too many chunks, reserved metadata, ...) is reported in
   * its slot and the others go on; a worker or state failure throws (nothing of the documents not yet stored is
   * written, and re-ingesting those already stored replaces them with the same content).
   */
  async ingestMany(tenant: string, inputs: IngestInput[], call: PeerCall = {}): Promise<BatchOutcome[]> {
    const prepared = inputs.map((input) => {
      try {
        return this.prepare(input);
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode === 400) return { error: (err as Error).message };
        throw err;
      }
    });
    const texts = prepared.flatMap((p) => ('texts' in p ? p.texts : []));
    const asked = texts.length > 0 ? await this.ingestModel() : '';
    const { vectors, model } = await this.embedWith(texts, asked, call);
    const outcomes: BatchOutcome[] = [];
    let at = 0;
    for (const [i, p] of prepared.entries()) {
      const input = inputs[i] as IngestInput;
      if (!('texts' in p)) {
        outcomes.push({ ok: false, ...(input.id ? { id: input.id } : {}), message: p.error });
        continue;
      }
      const own = vectors.slice(at, at + p.texts.length);
      at += p.texts.length;
      const stored = await this.storeEmbedded(tenant, input, p, own, model, asked, call);
      outcomes.push({ ok: true, id: stored.id, chunkCount: stored.chunkCount, corpusVersion: stored.corpusVersion });
    }
    return outcomes;
  }

  /** Checks a document and cuts it into chunks (400 for bad input); nothing is called or written. */
  private prepare(input: IngestInput): Prepared {
    const chunkSize = input.chunkSize ?? DEFAULT_CHUNK_SIZE;
    const chunkOverlap = input.chunkOverlap ?? defaultChunkOverlap(chunkSize);
    if (chunkOverlap > chunkSize / 2) {
      throw errors.BadRequest(`chunkOverlap (${chunkOverlap}) must be at most half of chunkSize (${chunkSize})`);
    }
    const bytes = Buffer.byteLength(input.text, 'utf8');
    if (bytes > MAX_TEXT_BYTES) throw errors.BadRequest(`text is ${bytes} bytes; the limit is ${MAX_TEXT_BYTES} bytes (1 MB)`);
    const metadata = input.metadata ?? {};
    for (const key of RESERVED_FILTER_KEYS) {
      if (Object.prototype.hasOwnProperty.call(metadata, key)) {
        throw errors.BadRequest(`metadata key '${key}' is reserved (it filters on the document's own ${key})`);
      }
    }

    const texts = chunkText(input.text, { chunkSize, chunkOverlap }).map((c) => c.text);
    if (texts.length === 0) throw errors.BadRequest('text has no content besides whitespace');
    if (texts.length > this.opts.maxChunksPerDocument) {
      throw errors.BadRequest(
        `text makes ${texts.length} chunks; the limit is ${this.opts.maxChunksPerDocument} (use a larger chunkSize or split the document)`,
      );
    }
    return { texts, metadata, chunkSize, chunkOverlap };
  }

  private async store(tenant: string, input: IngestInput, p: Prepared, vectors: Float32Array[], model: string) {
    const chunks: StoredChunk[] = p.texts.map((text, i) => ({ text, vector: vectors[i] as Float32Array }));
    const meta: DocumentMeta = {
      id: input.id ?? randomUUID(),
      title: input.title,
      ...(input.source !== undefined ? { source: input.source } : {}),
      metadata: p.metadata,
      createdAt: new Date().toISOString(),
      chunkCount: chunks.length,
      contentHash: textSha256(input.text),
      model,
      dimensions: chunks[0]?.vector.length ?? 0,
      chunkSize: p.chunkSize,
      chunkOverlap: p.chunkOverlap,
    };
    const stamp = await this.index.put(tenant, { meta, chunks });
    return { id: meta.id, title: meta.title, chunkCount: meta.chunkCount, corpusVersion: stamp.version };
  }

  async get(tenant: string, id: string) {
    const doc = await this.index.get(tenant, id);
    if (!doc) throw errors.NotFound('document', id);
    return { ...publicDocument(doc.meta), chunks: doc.chunks.map((c, index) => ({ index, text: c.text })) };
  }

  async list(tenant: string, offset: number, limit: number) {
    const { total, documents } = await this.index.list(tenant, offset, limit);
    return { total, offset, limit, documents: documents.map(publicDocument) };
  }

  async delete(tenant: string, id: string): Promise<CorpusStamp> {
    const stamp = await this.index.delete(tenant, id);
    if (stamp === undefined) throw errors.NotFound('document', id);
    return stamp;
  }

  /**
   * Embeds texts with `model` ('' = the worker's default) in as few worker calls as they allow (a bulk ingest's, the
   * re-embed job's); the model the worker reports and one vector per text.
   */
  async embedWith(texts: string[], model: string, call: PeerCall = {}): Promise<{ model: string; vectors: Float32Array[] }> {
    const vectors: Float32Array[] = [];
    let reported = model;
    for (let i = 0; i < texts.length; i += EMBED_INPUTS_PER_CALL) {
      const embeddings = await this.opts.embedder.embed(texts.slice(i, i + EMBED_INPUTS_PER_CALL), await embedOptions(call, this.opts.ingestTimeoutMs, model));
      vectors.push(...embeddings.vectors);
      reported = embeddings.model;
    }
    return { model: reported, vectors };
  }

  /** The engine, the active model and dimensions, and the tenant's documents and chunks. */
  async info(tenant: string) {
    const info = await this.index.info(tenant);
    return { ...info, ...(this.opts.model ? { configuredModel: this.opts.model } : {}) };
  }

  /** Loads the index at boot; a failure is logged and retried by the first request. */
  async warmUp(): Promise<void> {
    try {
      const loaded = await this.index.warmUp();
      this.opts.logger?.info({ engine: this.index.engine, ...loaded }, 'document index ready');
      const active = (await this.index.stamp()).model;
      if (active && this.opts.model && active !== this.opts.model) {
        // The index's model wins: its vectors were made with it, and a query of another model would rank them wrongly.
        this.opts.logger?.warn(
          { configured: this.opts.model, active },
          `RETRIEVAL_EMBEDDINGS_MODEL names ${this.opts.model}, but the index holds vectors of ${active}: queries and ingests use ${active}. ` +
            `Start a re-embed (POST /api/v1/jobs/reembed {"model":"${this.opts.model}"}) to move the index to ${this.opts.model}`,
        );
      }
    } catch (err) {
      this.opts.logger?.warn({ err: { message: (err as Error).message } }, 'document index not loaded at boot; the first request retries');
    }
  }

  private normalized(tenant: string, kind: 'search' | 'context', q: SearchRequest & Pick<ContextRequest, 'maxChars'>, defaultLimit: number): NormalizedRequest {
    const req = normalizeRequest({
      tenant,
      kind,
      query: q.query,
      limit: q.limit ?? defaultLimit,
      filters: q.filters,
      scoreThreshold: q.scoreThreshold,
      maxChars: kind === 'context' ? (q.maxChars ?? 4000) : undefined,
      model: this.opts.model,
      hybrid: q.hybrid ?? this.opts.hybrid ?? false,
    });
    if (req.query.length === 0) throw errors.BadRequest('query must contain non-whitespace characters');
    if (req.hybrid && this.index.engine !== 'pgvector') {
      throw errors.BadRequest(`hybrid ranking needs the pgvector engine (RETRIEVAL_INDEX=pgvector); this index is ${this.index.engine}`);
    }
    return req;
  }

  /** Ranks chunks against the corpus at `stamp` (the value just read from Redis). */
  private async rank(req: NormalizedRequest, stamp: CorpusStamp, call: PeerCall) {
    const embedQuery = async () => this.opts.embedder.embed([req.query], await embedOptions(call, undefined, req.model));
    const [embedding] = await Promise.all([embedQuery(), this.index.prepare?.(stamp)]);
    const vector = embedding.vectors[0] as Float32Array;
    const opts = { limit: req.limit, filters: req.filters, scoreThreshold: req.scoreThreshold, ...(req.hybrid ? { hybridText: req.query } : {}) };
    const outcome = await this.index.search(req.tenant, vector, opts, stamp);
    if (outcome.skippedDimensionMismatch > 0) {
      this.opts.logger?.warn(
        { skipped: outcome.skippedDimensionMismatch, queryModel: embedding.model, dims: vector.length },
        'chunks embedded with another dimension were skipped; re-ingest them with the current model',
      );
    }
    return outcome;
  }

  /**
   * The corpus stamp now or, while the state store does not answer (a failover, an outage), the one this process last
   * knew: searches keep answering from the corpus they last saw, said so in the answer, rather than failing.
   */
  private async currentStamp(tenant: string): Promise<{ stamp: CorpusStamp; corpus: CachedAnswer['corpus'] }> {
    try {
      const stamp = await this.index.stamp(tenant);
      if (this.lastRead.size >= LAST_READ_TENANTS && !this.lastRead.has(tenant)) this.lastRead.clear();
      this.lastRead.set(tenant, stamp);
      return { stamp, corpus: 'current' };
    } catch (err) {
      const last = this.index.lastStamp();
      if (!(err instanceof StateUnavailable) || !last) throw err;
      const now = Date.now();
      if (now - this.lastStaleLog > 5000) {
        this.lastStaleLog = now;
        this.opts.logger?.warn({ corpus: last, err: { message: (err as Error).message } }, 'corpus stamp unreadable: answering from the last known corpus');
      }
      return { stamp: last, corpus: 'last-known' };
    }
  }

  private lastStaleLog = 0;
  /**
   * The stamp this process last read for each tenant: the guess a cached request of the tenant reads its entry at
   * while the stamp is being read.
   */
  private readonly lastRead = new Map<string, CorpusStamp>();

  /**
   * The answer for the corpus at the stamp read now, embedded with that corpus's active model (part of the key). A
   * re-embed that switches the model between the stamp read and the ranking makes the request start again, once, at
   * the new stamp: no answer ranks vectors of one model against a query of another.
   */
  private async cached(cache: CategoryCache, base: NormalizedRequest, load: (req: NormalizedRequest, stamp: CorpusStamp) => Promise<unknown>): Promise<CachedAnswer> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.cachedAt(cache, base, load);
      } catch (err) {
        if (!(err instanceof ModelChanged) || attempt > 0) throw err;
      }
    }
  }

  /**
   * The answer at the corpus stamp read now, in one round trip when the tenant's stamp has not moved since this process
   * last read it: the cache read of the entry at that stamp leaves with the stamp read, and is used only when the
   * stamp read gives that very key (the tenant's version, epoch, model and generation, all in the key). Otherwise (the
   * first request after one of the tenant's writes, a switch; none read yet) the entry is read at the stamp read, a
   * second trip, as it always was.
   */
  private async cachedAt(cache: CategoryCache, base: NormalizedRequest, load: (req: NormalizedRequest, stamp: CorpusStamp) => Promise<unknown>): Promise<CachedAnswer> {
    const guess = this.lastRead.get(base.tenant) ?? this.index.lastStamp();
    const guessed = guess ? cache.prefetch(retrievalCacheKey({ ...base, model: this.modelOf(guess) }, guess)) : undefined;
    const { stamp, corpus } = await this.currentStamp(base.tenant);
    const req = { ...base, model: this.modelOf(stamp) };
    const key = retrievalCacheKey(req, stamp);
    const opts = guessed && guessed.key === key ? { prefetched: guessed } : undefined;
    try {
      const { value, hit } = await cache.wrapJsonResult(key, () => load(req, stamp), opts);
      return { body: value, hit, corpus, model: req.model };
    } catch (err) {
      // The stamp was read, but the corpus at it could not be loaded (the store went away meanwhile): answer for the
      // corpus this process holds, under that corpus's own key, never under the newer stamp's.
      const last = this.index.lastStamp();
      if (!(err instanceof StateUnavailable) || corpus === 'last-known' || !last || sameStamp(last, stamp)) throw err;
      const lastReq = { ...base, model: this.modelOf(last) };
      const { value, hit } = await cache.wrapJsonResult(retrievalCacheKey(lastReq, last), () => load(lastReq, last));
      return { body: value, hit, corpus: 'last-known', model: lastReq.model };
    }
  }

  search(tenant: string, q: SearchRequest, call: PeerCall = {}): Promise<CachedAnswer> {
    const req = this.normalized(tenant, 'search', q, 10);
    return this.cached(this.opts.searchCache, req, async (req, stamp) => {
      const { hits, total } = await this.rank(req, stamp, call);
      return {
        query: req.query,
        results: hits.map((h, i) => ({
          documentId: h.meta.id,
          chunkIndex: h.chunkIndex,
          title: h.meta.title,
          text: h.text,
          score: h.score,
          metadata: h.meta.metadata,
          citation: citationOf(h, i + 1),
        })),
        total,
      };
    });
  }

  context(tenant: string, q: ContextRequest, call: PeerCall = {}): Promise<CachedAnswer> {
    const req = this.normalized(tenant, 'context', q, 5);
    return this.cached(this.opts.contextCache, req, async (req, stamp) => {
      const { hits } = await this.rank(req, stamp, call);
      const bundle = buildContext(
        hits.map((h) => ({ documentId: h.meta.id, title: h.meta.title, source: h.meta.source, chunkIndex: h.chunkIndex, text: h.text, score: h.score })),
        req.maxChars ?? 4000,
      );
      return { query: req.query, ...bundle };
    });
  }
}
