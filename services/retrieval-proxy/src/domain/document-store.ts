import { randomBytes } from 'node:crypto';
import { DEADLINE_GUARD, StateCalls, type StateReplication } from '@aicache/service-kit';
import type { RedisClient } from '@aicache/cache';
import type { Metadata } from './filters.js';
import { DEFAULT_TENANT, TENANT_RE } from '@aicache/auth';
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

/** A stored document with the tenant it belongs to (the tenant is not part of its meta: it is where it is kept). */
export interface TenantDocument extends StoredDocument {
  tenant: string;
}

export interface CorpusSnapshot {
  stamp: CorpusStamp;
  documents: TenantDocument[];
}

/** Which corpus an answer was computed from: a random epoch made with the index, and its version. */
export interface CorpusStamp {
  /** Created with the index (the first write or read finds none and makes one); never repeats after a state reset. */
  epoch: string;
  /** INCR'd by every ingest and delete; starts again at 1 after a reset, hence the epoch. */
  version: number;
}

export function sameStamp(a: CorpusStamp | undefined, b: CorpusStamp): boolean {
  return a !== undefined && a.epoch === b.epoch && a.version === b.version;
}

const newEpoch = (): string => randomBytes(8).toString('hex');

/** Reads the stamp, making the epoch if the index has none yet. KEYS: epoch, version. ARGV: a new epoch. */
const STAMP_SCRIPT = `
local e = redis.call('GET', KEYS[1])
if not e then
  e = ARGV[1]
  redis.call('SET', KEYS[1], e)
end
return {e, redis.call('GET', KEYS[2]) or '0'}
`;

/**
 * Replaces a document and bumps the version. KEYS: doc, ids, version, epoch, tenants. ARGV: deadline, new epoch, id,
 * the tenant to list in the tenants set ('' for the default tenant, which is never listed there), then the hash's
 * field/value pairs (HSET in batches: Lua's unpack has a stack limit).
 */
const PUT_SCRIPT = `${DEADLINE_GUARD}
redis.call('SET', KEYS[4], ARGV[2], 'NX')
redis.call('DEL', KEYS[1])
if ARGV[4] ~= '' then redis.call('SADD', KEYS[5], ARGV[4]) end
local n = #ARGV
local i = 5
while i <= n do
  local j = math.min(i + 999, n)
  redis.call('HSET', KEYS[1], unpack(ARGV, i, j))
  i = j + 1
end
redis.call('ZADD', KEYS[2], 0, ARGV[3])
return {redis.call('INCR', KEYS[3]), redis.call('GET', KEYS[4])}
`;

/** KEYS: doc, ids, version, epoch. ARGV: deadline, new epoch, id. {-1} when there was no such document. */
const DELETE_SCRIPT = `${DEADLINE_GUARD}
if redis.call('DEL', KEYS[1]) == 0 then return {-1} end
redis.call('ZREM', KEYS[2], ARGV[3])
redis.call('SET', KEYS[4], ARGV[2], 'NX')
return {redis.call('INCR', KEYS[3]), redis.call('GET', KEYS[4])}
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
    if (!text || !vec) throw new Error(`document ${meta.id} is missing chunk ${i}`);
    chunks.push({ text: text.toString('utf8'), vector: bufferToVector(vec) });
  }
  return { meta, chunks };
}

/**
 * The document index: STATE, not cache. Lives on the state Redis under `<prefix>:*` (never under the
 * cache's `<service>:` prefix, so a cache clear cannot touch it) with no TTLs. On a Cluster the prefix is
 * `state:{retrieval-proxy}` (kit's stateKeyPrefix): every key below is in one slot, so the scripts that touch a
 * document, the ids, the version and the epoch together run there.
 * Every document belongs to a tenant, and ids are per tenant. The default tenant keeps the layout the index had
 * before tenants existed (so data stored then is its own, with nothing to migrate); any other tenant `<t>` has the
 * same keys under `<prefix>:t:<t>:` (tenant ids are `[a-z0-9_-]`, never ':', so the two never meet):
 * - `<prefix>:doc:<id>`, `<prefix>:t:<t>:doc:<id>`  hash: meta (JSON), t:<i> (chunk text), v:<i> (float32 LE vector bytes)
 * - `<prefix>:docs`, `<prefix>:t:<t>:docs`          sorted set of the tenant's ids (score 0: listed in id order)
 * - `<prefix>:tenants`        set of the tenants other than the default one that ever stored a document
 * - `<prefix>:corpus_version` INCR'd by every ingest and delete of any tenant, in the same script
 * - `<prefix>:corpus_epoch`   random, made with the index: a state Redis that lost its data gets a new one
 * Every call is bounded, and writes carry a deadline Redis checks (StateCalls): a 503 means nothing was written.
 */
export class DocumentStore {
  readonly versionKey: string;
  readonly epochKey: string;
  readonly tenantsKey: string;
  readonly calls: StateCalls;

  constructor(
    redis: RedisClient,
    private readonly prefix = 'state:retrieval-proxy',
    timeoutMs = 5000,
    replication?: StateReplication,
  ) {
    this.versionKey = `${prefix}:corpus_version`;
    this.epochKey = `${prefix}:corpus_epoch`;
    this.tenantsKey = `${prefix}:tenants`;
    this.calls = new StateCalls(redis, { name: 'document index', timeoutMs, ...(replication ? { replication } : {}) });
  }

  /** Where the tenant's keys start: the bare prefix for the default tenant (the layout from before tenants). */
  private tenantPrefix(tenant: string): string {
    if (!TENANT_RE.test(tenant)) throw new RangeError(`not a tenant id: ${JSON.stringify(tenant)}`);
    return tenant === DEFAULT_TENANT ? this.prefix : `${this.prefix}:t:${tenant}`;
  }

  docKey(tenant: string, id: string): string {
    return `${this.tenantPrefix(tenant)}:doc:${id}`;
  }

  idsKey(tenant: string): string {
    return `${this.tenantPrefix(tenant)}:docs`;
  }

  /** The corpus the index holds now. */
  stamp(): Promise<CorpusStamp> {
    return this.calls.read('corpus version read', (c) => this.readStamp(c));
  }

  private async readStamp(c: RedisClient): Promise<CorpusStamp> {
    const [known, knownVersion] = await c.mget(this.epochKey, this.versionKey);
    if (known) return { epoch: known, version: Number(knownVersion ?? 0) };
    const [epoch, version] = (await c.eval(STAMP_SCRIPT, 2, this.epochKey, this.versionKey, newEpoch())) as [string, string];
    return { epoch, version: Number(version) };
  }

  /** Replaces the document (if any) and bumps the corpus version atomically. Returns the new stamp. */
  async put(tenant: string, doc: StoredDocument): Promise<CorpusStamp> {
    const { meta, chunks } = doc;
    if (chunks.length !== meta.chunkCount) throw new RangeError('chunkCount does not match the chunks');
    const docKey = this.docKey(tenant, meta.id);
    const listed = tenant === DEFAULT_TENANT ? '' : tenant;
    const fields: Array<string | Buffer> = [META, JSON.stringify(meta)];
    chunks.forEach((c, i) => fields.push(textField(i), c.text, vectorField(i), vectorToBuffer(c.vector)));
    const [version, epoch] = (await this.calls.write('document write', (c, deadline) =>
      c.eval(PUT_SCRIPT, 5, docKey, this.idsKey(tenant), this.versionKey, this.epochKey, this.tenantsKey, deadline, newEpoch(), meta.id, listed, ...fields),
    )) as [number, string];
    return { epoch, version: Number(version) };
  }

  /** Deletes the tenant's document and bumps the version; undefined when the tenant has no such document. */
  async delete(tenant: string, id: string): Promise<CorpusStamp | undefined> {
    const docKey = this.docKey(tenant, id);
    const [version, epoch] = (await this.calls.write('document delete', (c, deadline) =>
      c.eval(DELETE_SCRIPT, 4, docKey, this.idsKey(tenant), this.versionKey, this.epochKey, deadline, newEpoch(), id),
    )) as [number, string?];
    return Number(version) < 0 || epoch === undefined ? undefined : { epoch, version: Number(version) };
  }

  async get(tenant: string, id: string): Promise<StoredDocument | undefined> {
    const docKey = this.docKey(tenant, id);
    const fields = await this.calls.read('document read', (c) => c.hgetallBuffer(docKey));
    return parseDocument(fields);
  }

  async list(tenant: string, offset: number, limit: number): Promise<{ total: number; documents: DocumentMeta[] }> {
    const idsKey = this.idsKey(tenant);
    return this.calls.read('document list', async (c) => {
      const [total, ids] = await Promise.all([
        c.zcard(idsKey),
        c.zrange(idsKey, String(offset), String(offset + limit - 1)),
      ]);
      if (ids.length === 0) return { total, documents: [] };
      const pipeline = c.pipeline();
      for (const id of ids) pipeline.hget(this.docKey(tenant, id), META);
      const metas = (await pipeline.exec()) ?? [];
      const documents: DocumentMeta[] = [];
      for (const [err, raw] of metas) {
        if (!err && typeof raw === 'string') documents.push(JSON.parse(raw) as DocumentMeta);
      }
      return { total, documents };
    });
  }

  /**
   * Everything, of every tenant, with the stamp read FIRST: if a write lands while loading, the snapshot may be
   * newer than its label, never older, so the next stamp check reloads instead of serving a stale index.
   */
  async loadAll(batchSize = 100): Promise<CorpusSnapshot> {
    return this.calls.read('corpus load', async (c) => {
      const stamp = await this.readStamp(c);
      const others = (await c.smembers(this.tenantsKey)).filter((t) => TENANT_RE.test(t) && t !== DEFAULT_TENANT).sort();
      const documents: TenantDocument[] = [];
      for (const tenant of [DEFAULT_TENANT, ...others]) {
        const ids = await c.zrange(this.idsKey(tenant), '0', '-1');
        for (let i = 0; i < ids.length; i += batchSize) {
          const pipeline = c.pipeline();
          for (const id of ids.slice(i, i + batchSize)) pipeline.hgetallBuffer(this.docKey(tenant, id));
          const results = (await pipeline.exec()) ?? [];
          for (const [err, fields] of results) {
            if (err) throw err;
            const doc = parseDocument(fields as Record<string, Buffer>);
            if (doc) documents.push({ tenant, ...doc });
          }
        }
      }
      return { stamp, documents };
    }, Math.max(this.calls.timeoutMs * 12, 60_000));
  }

  async ping(): Promise<boolean> {
    try {
      return (await this.calls.read('ping', (c) => c.ping())) === 'PONG';
    } catch {
      return false;
    }
  }
}
