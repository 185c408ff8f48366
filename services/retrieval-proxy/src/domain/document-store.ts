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
  /**
   * The index's active embedding model: what queries and ingests embed with. Set by the first ingest, moved only by
   * a re-embed's switch (which also moves the version). Undefined while the index has none (empty and never written).
   */
  model?: string | undefined;
  /** Redis engine: which generation of vectors the active model's are (0: the `v:<i>` fields of before re-embeds). */
  generation?: number;
  /**
   * Read for one tenant: the corpus version of that tenant's last write (ingest or delete; pgvector also moves it at a
   * re-embed's switch). Its cached answers are keyed by it, so another tenant's writes leave them valid. Absent when
   * the stamp was not read for a tenant, or the tenant has not written since it was first recorded: the corpus
   * version stands in (any write moves it, as every write did before tenants had their own).
   */
  tenantVersion?: number;
}

/** Thrown by a write embedded with another model than the index's active one (a re-embed switched meanwhile). */
export class ModelChanged extends Error {
  readonly statusCode = 409;
  readonly code = 'MODEL_CHANGED';
  constructor(
    readonly active: string,
    got?: string,
  ) {
    super(`the document index embeds with model '${active}'; the write's vectors are of ${got ? `model '${got}'` : 'another model'}`);
  }
}

/** The state of a re-embed under way, as the index holds it. */
export interface ReembedState {
  job: string;
  model: string;
  dimensions: number;
}

/** What decides a document's chunk texts: the same identity, the same texts, so vectors staged for it still hold. */
export function chunkIdentity(meta: Pick<DocumentMeta, 'contentHash' | 'chunkSize' | 'chunkOverlap'>): string {
  return `${meta.contentHash}|${meta.chunkSize}|${meta.chunkOverlap}`;
}

export function sameStamp(a: CorpusStamp | undefined, b: CorpusStamp): boolean {
  return a !== undefined && a.epoch === b.epoch && a.version === b.version;
}

const newEpoch = (): string => randomBytes(8).toString('hex');

/** A document in the re-embed's dirty set: tenant ids never hold a newline. */
const dirtyMember = (tenant: string, id: string): string => `${tenant}\n${id}`;

/** Reads the stamp, making the epoch if the index has none yet. KEYS: epoch, version. ARGV: a new epoch. */
const STAMP_SCRIPT = `
local e = redis.call('GET', KEYS[1])
if not e then
  e = ARGV[1]
  redis.call('SET', KEYS[1], e)
end
return {e, redis.call('GET', KEYS[2]) or '0'}
`;

/** The vector field name prefix of a generation, in Lua: generation 0 keeps the `v:<i>` fields of before re-embeds. */
const LUA_VECTOR_PREFIX = `
local function vprefix(gen)
  if gen == nil or gen == false or gen == '0' then return 'v:' end
  return 'v' .. gen .. ':'
end
`;

/**
 * Replaces a document and bumps the version, refusing vectors of another model than the active one (the first write
 * makes its model the active one). The vectors go to the active generation's fields. While a re-embed runs, the
 * document is marked dirty: the re-embed stages it again before it may switch.
 * KEYS: doc, ids, version, epoch, tenants, model, generation, reembed, dirty, tenant version. ARGV: deadline, new epoch, id, the tenant
 * to list in the tenants set ('' for the default tenant, which is never listed there), model, dirty member, meta JSON,
 * then text/vector pairs, one per chunk (HSET in batches: Lua's unpack has a stack limit).
 * {-2, active model} when the model is not the active one.
 */
const PUT_SCRIPT = `${DEADLINE_GUARD}${LUA_VECTOR_PREFIX}
local active = redis.call('GET', KEYS[6])
if active and active ~= ARGV[5] then return {-2, active} end
if not active then redis.call('SET', KEYS[6], ARGV[5]) end
local vp = vprefix(redis.call('GET', KEYS[7]))
redis.call('SET', KEYS[4], ARGV[2], 'NX')
redis.call('DEL', KEYS[1])
if ARGV[4] ~= '' then redis.call('SADD', KEYS[5], ARGV[4]) end
redis.call('HSET', KEYS[1], 'meta', ARGV[7])
local n = #ARGV
local i = 8
local k = 0
while i <= n do
  local j = math.min(i + 499, n)
  local args = {}
  for x = i, j, 2 do
    args[#args + 1] = 't:' .. k
    args[#args + 1] = ARGV[x]
    args[#args + 1] = vp .. k
    args[#args + 1] = ARGV[x + 1]
    k = k + 1
  end
  redis.call('HSET', KEYS[1], unpack(args))
  i = j + 1
end
redis.call('ZADD', KEYS[2], 0, ARGV[3])
if redis.call('EXISTS', KEYS[8]) == 1 then redis.call('SADD', KEYS[9], ARGV[6]) end
local v = redis.call('INCR', KEYS[3])
redis.call('SET', KEYS[10], v)
return {v, redis.call('GET', KEYS[4])}
`;

/**
 * KEYS: doc, ids, version, epoch, reembed, dirty, tenant version. ARGV: deadline, new epoch, id, dirty member.
 * {-1} when there was no such document.
 */
const DELETE_SCRIPT = `${DEADLINE_GUARD}
if redis.call('DEL', KEYS[1]) == 0 then return {-1} end
redis.call('ZREM', KEYS[2], ARGV[3])
redis.call('SET', KEYS[4], ARGV[2], 'NX')
if redis.call('EXISTS', KEYS[5]) == 1 then redis.call('SADD', KEYS[6], ARGV[4]) end
local v = redis.call('INCR', KEYS[3])
redis.call('SET', KEYS[7], v)
return {v, redis.call('GET', KEYS[4])}
`;

/**
 * Claims the staging generation for a re-embed job. KEYS: reembed, dirty, generation, generation sequence.
 * ARGV: job, model, dimensions. {'claimed'|'resumed'|'busy', holder job, staging generation}.
 */
const CLAIM_SCRIPT = `
local cur = redis.call('HGET', KEYS[1], 'job')
if cur == ARGV[1] then return {'resumed', cur, redis.call('HGET', KEYS[1], 'generation')} end
if cur then return {'busy', cur, redis.call('HGET', KEYS[1], 'generation')} end
local active = tonumber(redis.call('GET', KEYS[3]) or '0')
local g = redis.call('INCR', KEYS[4])
if g <= active then
  g = active + 1
  redis.call('SET', KEYS[4], g)
end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'job', ARGV[1], 'model', ARGV[2], 'dimensions', ARGV[3], 'generation', g)
return {'claimed', ARGV[1], tostring(g)}
`;

/**
 * Stages one document's vectors of the new model, if the job still holds the staging generation and the document
 * still has the chunk texts they were made from; either way a document gone or staged is no longer dirty.
 * KEYS: doc, reembed, dirty. ARGV: deadline, job, chunk identity, dirty member, model JSON, then one vector per chunk.
 * -1: not the job's generation; 0: the document changed or is gone (nothing staged); 1: staged.
 */
const STAGE_SCRIPT = `${DEADLINE_GUARD}
if redis.call('HGET', KEYS[2], 'job') ~= ARGV[2] then return -1 end
local gen = redis.call('HGET', KEYS[2], 'generation')
local raw = redis.call('HGET', KEYS[1], 'meta')
if not raw then
  redis.call('SREM', KEYS[3], ARGV[4])
  return 0
end
local m = cjson.decode(raw)
local n = #ARGV - 5
if m.contentHash .. '|' .. tostring(m.chunkSize) .. '|' .. tostring(m.chunkOverlap) ~= ARGV[3] or tonumber(m.chunkCount) ~= n then return 0 end
local args = {'m' .. gen, ARGV[5]}
for k = 0, n - 1 do
  args[#args + 1] = 'v' .. gen .. ':' .. k
  args[#args + 1] = ARGV[6 + k]
end
redis.call('HSET', KEYS[1], unpack(args))
redis.call('SREM', KEYS[3], ARGV[4])
return 1
`;

/**
 * The switch: the staging generation becomes the active one, with its model, and the version moves, in one step;
 * refused while any document is dirty (written since it was staged). KEYS: reembed, dirty, model, generation,
 * version, epoch. ARGV: deadline, job, new epoch. {-1}: not the job's; {-2, dirty count}; else {version, epoch, old generation}.
 */
const SWITCH_SCRIPT = `${DEADLINE_GUARD}
if redis.call('HGET', KEYS[1], 'job') ~= ARGV[2] then return {-1} end
local dirty = redis.call('SCARD', KEYS[2])
if dirty > 0 then return {-2, dirty} end
local old = redis.call('GET', KEYS[4]) or '0'
redis.call('SET', KEYS[4], redis.call('HGET', KEYS[1], 'generation'))
redis.call('SET', KEYS[3], redis.call('HGET', KEYS[1], 'model'))
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SET', KEYS[6], ARGV[3], 'NX')
return {redis.call('INCR', KEYS[5]), redis.call('GET', KEYS[6]), old}
`;

/** Drops the job's claim on the staging generation. KEYS: reembed, dirty. ARGV: job. 1 when it held it. */
const RELEASE_SCRIPT = `
if redis.call('HGET', KEYS[1], 'job') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
`;

const META = 'meta';
const textField = (i: number) => `t:${i}`;
/** Generation 0 keeps the field names of before re-embeds. */
const vectorField = (gen: number, i: number) => (gen === 0 ? `v:${i}` : `v${gen}:${i}`);
/** The model and dimensions of a document's vectors of generation `gen`, when a re-embed staged them. */
const modelField = (gen: number) => `m${gen}`;

/** A document without the text or the vector of a chunk in the generation read (a switch removed the old one meanwhile). */
class MissingChunk extends Error {
  constructor(
    id: string,
    chunk: number,
    readonly generation: number,
  ) {
    super(`document ${id} is missing chunk ${chunk}`);
  }
}

/** The meta with the model of the generation's vectors when a re-embed wrote them (the meta says the ingest's). */
function metaOf(raw: string | Buffer, staged: string | Buffer | null | undefined): DocumentMeta {
  const meta = JSON.parse(raw.toString()) as DocumentMeta;
  if (staged) {
    const m = JSON.parse(staged.toString()) as { model: string; dimensions: number };
    meta.model = m.model;
    meta.dimensions = m.dimensions;
  }
  return meta;
}

function parseDocument(fields: Record<string, Buffer>, gen: number): StoredDocument | undefined {
  const metaBuf = fields[META];
  if (!metaBuf) return undefined;
  const meta = metaOf(metaBuf, fields[modelField(gen)]);
  const chunks: StoredChunk[] = [];
  for (let i = 0; i < meta.chunkCount; i++) {
    const text = fields[textField(i)];
    const vec = fields[vectorField(gen, i)];
    if (!text || !vec) throw new MissingChunk(meta.id, i, gen);
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
 * - `<prefix>:written_at`, `<prefix>:t:<t>:written_at`  the corpus version of the tenant's last ingest or delete, set by
 *   the same script: what the tenant's cached answers are keyed by
 * - `<prefix>:corpus_epoch`   random, made with the index: a state Redis that lost its data gets a new one
 * - `<prefix>:corpus_model`   the active embedding model (set by the first ingest, moved by a re-embed's switch)
 * - `<prefix>:corpus_generation` which vector fields are the active model's: 0 (or absent) `v:<i>`, g `v<g>:<i>`;
 *   a document re-embedded into generation g also has `m<g>` (JSON: the model and dimensions of those vectors)
 * - `<prefix>:reembed`        hash (job, model, dimensions, generation) while a re-embed stages a generation
 * - `<prefix>:reembed:dirty`  set of `<tenant>\n<id>` written or deleted while it runs, to stage again before the switch
 * - `<prefix>:generation_seq` the last generation handed out (a cancelled re-embed's number is not used again)
 * Every call is bounded, and writes carry a deadline Redis checks (StateCalls): a 503 means nothing was written.
 */
export class DocumentStore {
  readonly versionKey: string;
  readonly epochKey: string;
  readonly tenantsKey: string;
  readonly modelKey: string;
  readonly generationKey: string;
  readonly reembedKey: string;
  readonly dirtyKey: string;
  readonly sequenceKey: string;
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
    this.modelKey = `${prefix}:corpus_model`;
    this.generationKey = `${prefix}:corpus_generation`;
    this.reembedKey = `${prefix}:reembed`;
    this.dirtyKey = `${prefix}:reembed:dirty`;
    this.sequenceKey = `${prefix}:generation_seq`;
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

  tenantVersionKey(tenant: string): string {
    return `${this.tenantPrefix(tenant)}:written_at`;
  }

  /** The corpus the index holds now; with `tenant`, also that tenant's version (see CorpusStamp.tenantVersion). */
  stamp(tenant?: string): Promise<CorpusStamp> {
    return this.calls.read('corpus version read', (c) => this.readStamp(c, tenant));
  }

  /**
   * Epoch, version, active model, generation and the tenant's version in one read (the keys share the prefix's slot on
   * a Cluster).
   */
  private async readStamp(c: RedisClient, tenant?: string): Promise<CorpusStamp> {
    const keys = [this.epochKey, this.versionKey, this.modelKey, this.generationKey];
    if (tenant !== undefined) keys.push(this.tenantVersionKey(tenant));
    const [known, knownVersion, model, generation, written] = await c.mget(...keys);
    const active = { ...(model ? { model } : {}), generation: Number(generation ?? 0), ...(written ? { tenantVersion: Number(written) } : {}) };
    if (known) return { epoch: known, version: Number(knownVersion ?? 0), ...active };
    const [epoch, version] = (await c.eval(STAMP_SCRIPT, 2, this.epochKey, this.versionKey, newEpoch())) as [string, string];
    return { epoch, version: Number(version), ...active };
  }

  /** Replaces the document (if any) and bumps the corpus version atomically. Returns the new stamp. */
  async put(tenant: string, doc: StoredDocument): Promise<CorpusStamp> {
    const { meta, chunks } = doc;
    if (chunks.length !== meta.chunkCount) throw new RangeError('chunkCount does not match the chunks');
    const docKey = this.docKey(tenant, meta.id);
    const listed = tenant === DEFAULT_TENANT ? '' : tenant;
    const pairs: Array<string | Buffer> = [];
    for (const c of chunks) pairs.push(c.text, vectorToBuffer(c.vector));
    const [version, epoch] = (await this.calls.write('document write', (c, deadline) =>
      c.eval(
        PUT_SCRIPT,
        10,
        docKey,
        this.idsKey(tenant),
        this.versionKey,
        this.epochKey,
        this.tenantsKey,
        this.modelKey,
        this.generationKey,
        this.reembedKey,
        this.dirtyKey,
        this.tenantVersionKey(tenant),
        deadline,
        newEpoch(),
        meta.id,
        listed,
        meta.model,
        dirtyMember(tenant, meta.id),
        JSON.stringify(meta),
        ...pairs,
      ),
    )) as [number, string];
    if (Number(version) === -2) throw new ModelChanged(String(epoch), meta.model);
    return { epoch, version: Number(version), model: meta.model, tenantVersion: Number(version) };
  }

  /** Deletes the tenant's document and bumps the version; undefined when the tenant has no such document. */
  async delete(tenant: string, id: string): Promise<CorpusStamp | undefined> {
    const docKey = this.docKey(tenant, id);
    const [version, epoch] = (await this.calls.write('document delete', (c, deadline) =>
      c.eval(
        DELETE_SCRIPT,
        7,
        docKey,
        this.idsKey(tenant),
        this.versionKey,
        this.epochKey,
        this.reembedKey,
        this.dirtyKey,
        this.tenantVersionKey(tenant),
        deadline,
        newEpoch(),
        id,
        dirtyMember(tenant, id),
      ),
    )) as [number, string?];
    return Number(version) < 0 || epoch === undefined ? undefined : { epoch, version: Number(version), tenantVersion: Number(version) };
  }

  async get(tenant: string, id: string): Promise<StoredDocument | undefined> {
    const docKey = this.docKey(tenant, id);
    const [generation, fields] = await this.calls.read('document read', (c) => Promise.all([c.get(this.generationKey), c.hgetallBuffer(docKey)]));
    return parseDocument(fields, Number(generation ?? 0));
  }

  async list(tenant: string, offset: number, limit: number): Promise<{ total: number; documents: DocumentMeta[] }> {
    const idsKey = this.idsKey(tenant);
    return this.calls.read('document list', async (c) => {
      const [total, ids, generation] = await Promise.all([
        c.zcard(idsKey),
        c.zrange(idsKey, String(offset), String(offset + limit - 1)),
        c.get(this.generationKey),
      ]);
      if (ids.length === 0) return { total, documents: [] };
      const gen = Number(generation ?? 0);
      const pipeline = c.pipeline();
      for (const id of ids) pipeline.hmget(this.docKey(tenant, id), META, modelField(gen));
      const metas = (await pipeline.exec()) ?? [];
      const documents: DocumentMeta[] = [];
      for (const [err, raw] of metas) {
        const [meta, staged] = (raw ?? []) as Array<string | null>;
        if (!err && typeof meta === 'string') documents.push(metaOf(meta, staged));
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
      // A re-embed's switch during the load removes the generation it reads: load again at the new one (bounded).
      for (let attempt = 0; ; attempt++) {
        try {
          return await this.loadOnce(c, batchSize);
        } catch (err) {
          const now = await this.readStamp(c);
          if (attempt >= 2 || !(err instanceof MissingChunk) || now.generation === err.generation) throw err;
        }
      }
    }, Math.max(this.calls.timeoutMs * 12, 60_000));
  }

  private async loadOnce(c: RedisClient, batchSize: number): Promise<CorpusSnapshot> {
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
          const doc = parseDocument(fields as Record<string, Buffer>, stamp.generation ?? 0);
          if (doc) documents.push({ tenant, ...doc });
        }
      }
    }
    return { stamp, documents };
  }

  /** Every tenant that may hold documents: the default one and those listed. */
  async tenants(): Promise<string[]> {
    const others = await this.calls.read('tenant list', (c) => c.smembers(this.tenantsKey));
    return [DEFAULT_TENANT, ...others.filter((t) => TENANT_RE.test(t) && t !== DEFAULT_TENANT).sort()];
  }

  /** The tenant's document ids, in id order. */
  async ids(tenant: string): Promise<string[]> {
    const key = this.idsKey(tenant);
    return this.calls.read('document ids', (c) => c.zrange(key, '0', '-1'));
  }

  /** The documents' metas and chunk texts (no vectors), with the staging model field; undefined for a document gone. */
  async texts(tenant: string, ids: string[], generation: number): Promise<Array<{ id: string; meta: DocumentMeta; texts: string[]; staged: string | null } | undefined>> {
    if (ids.length === 0) return [];
    return this.calls.read('document texts', async (c) => {
      const pipeline = c.pipeline();
      for (const id of ids) pipeline.hmget(this.docKey(tenant, id), META, modelField(generation));
      const heads = (await pipeline.exec()) ?? [];
      const metas = heads.map(([err, raw]) => {
        if (err) throw err;
        const [meta, staged] = raw as Array<string | null>;
        return meta ? { meta: JSON.parse(meta) as DocumentMeta, staged: staged ?? null } : undefined;
      });
      const bodies = c.pipeline();
      metas.forEach((m, i) => {
        if (m) bodies.hmget(this.docKey(tenant, ids[i]!), ...Array.from({ length: m.meta.chunkCount }, (_, k) => textField(k)));
      });
      const texts = (await bodies.exec()) ?? [];
      let at = 0;
      return metas.map((m, i) => {
        if (!m) return undefined;
        const [err, raw] = texts[at++]!;
        if (err) throw err;
        const chunks = raw as Array<string | null>;
        if (chunks.some((t) => t === null)) return undefined;
        return { id: ids[i]!, meta: m.meta, texts: chunks as string[], staged: m.staged };
      });
    });
  }

  /** The re-embed under way, if any. */
  async reembedState(): Promise<(ReembedState & { generation: number }) | undefined> {
    const h = await this.calls.read('re-embed read', (c) => c.hgetall(this.reembedKey));
    if (!h['job']) return undefined;
    return { job: h['job'], model: h['model'] ?? '', dimensions: Number(h['dimensions'] ?? 0), generation: Number(h['generation'] ?? 0) };
  }

  /** Claims the staging generation for `job` (or finds it already claimed by it, or by another). */
  async claimReembed(state: ReembedState): Promise<{ outcome: 'claimed' | 'resumed' | 'busy'; holder: string; generation: number }> {
    const [outcome, holder, generation] = (await this.calls.read('re-embed claim', (c) =>
      c.eval(CLAIM_SCRIPT, 4, this.reembedKey, this.dirtyKey, this.generationKey, this.sequenceKey, state.job, state.model, String(state.dimensions)),
    )) as ['claimed' | 'resumed' | 'busy', string, string];
    return { outcome, holder, generation: Number(generation) };
  }

  /** Stages a document's new vectors; -1 when the job no longer holds the generation, 0 when the document changed or went. */
  async stage(job: string, tenant: string, meta: DocumentMeta, model: string, vectors: Float32Array[]): Promise<-1 | 0 | 1> {
    const docKey = this.docKey(tenant, meta.id);
    const dims = vectors[0]?.length ?? 0;
    const staged = JSON.stringify({ model, dimensions: dims, job, identity: chunkIdentity(meta) });
    return (await this.calls.write('re-embed stage', (c, deadline) =>
      c.eval(STAGE_SCRIPT, 3, docKey, this.reembedKey, this.dirtyKey, deadline, job, chunkIdentity(meta), dirtyMember(tenant, meta.id), staged, ...vectors.map(vectorToBuffer)),
    )) as -1 | 0 | 1;
  }

  /** Documents written or deleted since the re-embed began and not staged again since, at most `max`. */
  async dirty(max: number): Promise<Array<{ tenant: string; id: string }>> {
    const members = await this.calls.read('re-embed dirty', (c) => c.srandmember(this.dirtyKey, max));
    return members.map((m) => {
      const at = m.indexOf('\n');
      return { tenant: m.slice(0, at), id: m.slice(at + 1) };
    });
  }

  /**
   * Drops the dirty mark of a document that is gone (nothing to stage), in the stage script: a document that came back
   * meanwhile keeps its mark.
   */
  async dropDirtyIfGone(job: string, tenant: string, id: string): Promise<void> {
    const docKey = this.docKey(tenant, id);
    await this.calls.write('re-embed dirty', (c, deadline) => c.eval(STAGE_SCRIPT, 3, docKey, this.reembedKey, this.dirtyKey, deadline, job, '', dirtyMember(tenant, id), ''));
  }

  /** The atomic switch; 'dirty' when documents changed since they were staged (stage them, then try again). */
  async switchGeneration(job: string): Promise<{ outcome: 'switched'; stamp: CorpusStamp; old: number } | { outcome: 'dirty'; count: number } | { outcome: 'lost' }> {
    const r = (await this.calls.write('re-embed switch', (c, deadline) =>
      c.eval(SWITCH_SCRIPT, 6, this.reembedKey, this.dirtyKey, this.modelKey, this.generationKey, this.versionKey, this.epochKey, deadline, job, newEpoch()),
    )) as [number, string?, string?];
    if (Number(r[0]) === -1) return { outcome: 'lost' };
    if (Number(r[0]) === -2) return { outcome: 'dirty', count: Number(r[1]) };
    return { outcome: 'switched', stamp: { epoch: String(r[1]), version: Number(r[0]) }, old: Number(r[2] ?? 0) };
  }

  /** Gives up the job's claim (cancel, failure); the caller then removes the generation's fields. */
  async releaseReembed(job: string): Promise<boolean> {
    return Number(await this.calls.read('re-embed release', (c) => c.eval(RELEASE_SCRIPT, 2, this.reembedKey, this.dirtyKey, job))) === 1;
  }

  /** Removes a generation's vector and model fields from every document (after a switch: the old one; after a cancel: the staged one). */
  async dropGeneration(generation: number, batchSize = 100): Promise<void> {
    for (const tenant of await this.tenants()) {
      const ids = await this.ids(tenant);
      for (let i = 0; i < ids.length; i += batchSize) {
        const slice = ids.slice(i, i + batchSize);
        await this.calls.read('generation drop', async (c) => {
          const heads = c.pipeline();
          for (const id of slice) heads.hget(this.docKey(tenant, id), META);
          const metas = (await heads.exec()) ?? [];
          const drops = c.pipeline();
          metas.forEach(([err, raw], k) => {
            if (err || typeof raw !== 'string') return;
            const n = (JSON.parse(raw) as DocumentMeta).chunkCount;
            drops.hdel(this.docKey(tenant, slice[k]!), modelField(generation), ...Array.from({ length: n }, (_, j) => vectorField(generation, j)));
          });
          await drops.exec();
        });
      }
    }
  }

  async ping(): Promise<boolean> {
    try {
      return (await this.calls.read('ping', (c) => c.ping())) === 'PONG';
    } catch {
      return false;
    }
  }
}
