import type { Redis } from 'ioredis';
import type { Metadata } from './filters.js';
import { bufferToVector, vectorToBuffer } from './vectors.js';

/** What is kept about a document besides its chunks. */
export interface DocumentMeta {
  id: string;
  title: string;
  source?: string;
  metadata: Metadata;
  /** ISO time of this version of the document (re-ingesting replaces it). */
  createdAt: string;
  chunkCount: number;
  /** sha256 of the ingested text, hex. */
  contentHash: string;
  /** Model the worker reported for the chunk vectors. */
  model: string;
  dimensions: number;
  chunkSize: number;
  chunkOverlap: number;
}

export interface StoredChunk {
  text: string;
  vector: Float32Array;
}

export interface StoredDocument {
  meta: DocumentMeta;
  chunks: StoredChunk[];
}

export interface CorpusSnapshot {
  version: number;
  documents: StoredDocument[];
}

/** Thrown when the state Redis does not answer in time; the routes render it as 503. */
export class StateStoreError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StateStoreError';
  }
}

const DELETE_SCRIPT = `
if redis.call('DEL', KEYS[1]) == 0 then return -1 end
redis.call('ZREM', KEYS[2], ARGV[1])
return redis.call('INCR', KEYS[3])
`;

const META = 'meta';
const textField = (i: number) => `t:${i}`;
const vectorField = (i: number) => `v:${i}`;

function parseDocument(fields: Record<string, Buffer>): StoredDocument | undefined {
  const metaBuf = fields[META];
  if (!metaBuf) return undefined;
  const meta = JSON.parse(metaBuf.toString('utf8')) as DocumentMeta;
  const chunks: StoredChunk[] = [];
  for (let i = 0; i < meta.chunkCount; i++) {
    const text = fields[textField(i)];
    const vec = fields[vectorField(i)];
    if (!text || !vec) throw new StateStoreError(`document ${meta.id} is missing chunk ${i}`);
    chunks.push({ text: text.toString('utf8'), vector: bufferToVector(vec) });
  }
  return { meta, chunks };
}

/**
 * The document index: STATE, not cache. Lives on the state Redis under `<prefix>:*` (never under the
 * cache's `<service>:` prefix, so a cache clear cannot touch it) with no TTLs.
 * - `<prefix>:doc:<id>`      hash: meta (JSON), t:<i> (chunk text), v:<i> (float32 LE vector bytes)
 * - `<prefix>:docs`          sorted set of ids (score 0: listed in id order)
 * - `<prefix>:corpus_version` INCR'd by every ingest and delete, in the same transaction.
 */
/** How long a write waits for a connection being made before it answers 503 unsent. */
const READY_WAIT_MS = 2000;

export class DocumentStore {
  readonly versionKey: string;
  readonly idsKey: string;

  constructor(
    private readonly redis: Redis,
    private readonly prefix = 'state:retrieval-proxy',
    private readonly timeoutMs = 5000,
  ) {
    this.versionKey = `${prefix}:corpus_version`;
    this.idsKey = `${prefix}:docs`;
  }

  docKey(id: string): string {
    return `${this.prefix}:doc:${id}`;
  }

  private async run<T>(what: string, op: () => Promise<T>, requireConnected = false, timeoutMs = this.timeoutMs): Promise<T> {
    // Writes are sent only on a ready connection: the offline queue would otherwise run them after we
    // answered 503. A connection being made (boot, reconnect) gets a short wait, within the same bound.
    if (requireConnected && this.redis.status !== 'ready' && !(await this.readyWithin(Math.min(timeoutMs, READY_WAIT_MS)))) {
      throw new StateStoreError(`state redis is not connected (${this.redis.status}); ${what} not done`);
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        op(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new StateStoreError(`state redis did not answer ${what} within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } catch (err) {
      if (err instanceof StateStoreError) throw err;
      throw new StateStoreError(`state redis failed on ${what}: ${(err as Error).message}`, { cause: err });
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  private readyWithin(ms: number): Promise<boolean> {
    if (this.redis.status === 'end') return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.redis.off('ready', onReady);
        resolve(ok);
      };
      const onReady = () => done(true);
      const timer = setTimeout(() => done(this.redis.status === 'ready'), ms);
      this.redis.once('ready', onReady);
    });
  }

  async version(): Promise<number> {
    const v = await this.run('corpus version read', () => this.redis.get(this.versionKey));
    return v === null ? 0 : Number(v);
  }

  /** Replaces the document (if any) and bumps the corpus version atomically. Returns the new version. */
  async put(doc: StoredDocument): Promise<number> {
    const { meta, chunks } = doc;
    if (chunks.length !== meta.chunkCount) throw new RangeError('chunkCount does not match the chunks');
    const fields: Array<string | Buffer> = [META, JSON.stringify(meta)];
    chunks.forEach((c, i) => fields.push(textField(i), c.text, vectorField(i), vectorToBuffer(c.vector)));
    const key = this.docKey(meta.id);
    const results = await this.run(
      'document write',
      () => this.redis.multi().del(key).hset(key, ...fields).zadd(this.idsKey, 0, meta.id).incr(this.versionKey).exec(),
      true,
    );
    if (!results) throw new StateStoreError('document write transaction was aborted');
    for (const [err] of results) if (err) throw new StateStoreError(`document write failed: ${err.message}`, { cause: err });
    return Number(results[3]?.[1]);
  }

  /** Deletes the document and bumps the version; undefined when there was no such document. */
  async delete(id: string): Promise<number | undefined> {
    const r = await this.run(
      'document delete',
      () => this.redis.eval(DELETE_SCRIPT, 3, this.docKey(id), this.idsKey, this.versionKey, id) as Promise<number>,
      true,
    );
    return Number(r) < 0 ? undefined : Number(r);
  }

  async get(id: string): Promise<StoredDocument | undefined> {
    const fields = await this.run('document read', () => this.redis.hgetallBuffer(this.docKey(id)));
    return parseDocument(fields);
  }

  async list(offset: number, limit: number): Promise<{ total: number; documents: DocumentMeta[] }> {
    return this.run('document list', async () => {
      const [total, ids] = await Promise.all([
        this.redis.zcard(this.idsKey),
        this.redis.zrange(this.idsKey, String(offset), String(offset + limit - 1)),
      ]);
      if (ids.length === 0) return { total, documents: [] };
      const pipeline = this.redis.pipeline();
      for (const id of ids) pipeline.hget(this.docKey(id), META);
      const metas = (await pipeline.exec()) ?? [];
      const documents: DocumentMeta[] = [];
      for (const [err, raw] of metas) {
        if (!err && typeof raw === 'string') documents.push(JSON.parse(raw) as DocumentMeta);
      }
      return { total, documents };
    });
  }

  /**
   * Everything, with the version read FIRST: if a write lands while loading, the snapshot may be newer
   * than its label, never older, so the next version check reloads instead of serving a stale index.
   */
  async loadAll(batchSize = 100): Promise<CorpusSnapshot> {
    return this.run('corpus load', async () => {
      const rawVersion = await this.redis.get(this.versionKey);
      const ids = await this.redis.zrange(this.idsKey, '0', '-1');
      const documents: StoredDocument[] = [];
      for (let i = 0; i < ids.length; i += batchSize) {
        const pipeline = this.redis.pipeline();
        for (const id of ids.slice(i, i + batchSize)) pipeline.hgetallBuffer(this.docKey(id));
        const results = (await pipeline.exec()) ?? [];
        for (const [err, fields] of results) {
          if (err) throw err;
          const doc = parseDocument(fields as Record<string, Buffer>);
          if (doc) documents.push(doc);
        }
      }
      return { version: rawVersion === null ? 0 : Number(rawVersion), documents };
    }, false, Math.max(this.timeoutMs * 12, 60_000));
  }

  async ping(): Promise<boolean> {
    try {
      return (await this.run('ping', () => this.redis.ping())) === 'PONG';
    } catch {
      return false;
    }
  }
}
