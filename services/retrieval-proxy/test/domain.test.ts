import { describe, expect, it } from 'vitest';
import { normalizeQuery, normalizeRequest, querySlug, retrievalCacheKey, searchPatternGlob } from '../src/domain/cache-keys.js';
import { buildContext } from '../src/domain/context.js';
import { CorpusIndex } from '../src/domain/corpus-index.js';
import type { DocumentMeta } from '../src/domain/document-store.js';
import { matchesFilters, normalizeFilters } from '../src/domain/filters.js';
import { base64ToVector, bufferToVector, cosine, vectorToBuffer } from '../src/domain/vectors.js';
import { decodeEmbeddings } from '../src/domain/embedder.js';
import { tenantEfSearch } from '../src/domain/pgvector-index.js';

describe('filters', () => {
  const doc = { id: 'd1', source: 'a.md', metadata: { lang: 'en', n: 2, ok: true, tags: ['x', 'y'] } };

  it('matches by typed equality, any-of arrays, string[] metadata and document fields', () => {
    expect(matchesFilters(doc, { lang: 'en' })).toBe(true);
    expect(matchesFilters(doc, { lang: ['de', 'en'] })).toBe(true);
    expect(matchesFilters(doc, { lang: 'de' })).toBe(false);
    expect(matchesFilters(doc, { n: 2, ok: true })).toBe(true);
    expect(matchesFilters(doc, { n: '2' })).toBe(false);
    expect(matchesFilters(doc, { tags: 'y' })).toBe(true);
    expect(matchesFilters(doc, { tags: ['z', 'x'] })).toBe(true);
    expect(matchesFilters(doc, { missing: 'x' })).toBe(false);
    expect(matchesFilters(doc, { documentId: 'd1', source: 'a.md' })).toBe(true);
    expect(matchesFilters(doc, { documentId: ['d2'] })).toBe(false);
  });

  it('normalizes key order, array order, duplicates and one-element arrays', () => {
    expect(JSON.stringify(normalizeFilters({ b: ['y', 'x', 'y'], a: ['only'] }))).toBe('{"a":"only","b":["x","y"]}');
    expect(normalizeFilters({ a: [2, '2'] })).toEqual({ a: [2, '2'] });
  });
});

describe('cache keys', () => {
  const base = { tenant: 'default', kind: 'search' as const, query: '  Refund   POLICY\n', limit: 10, model: '' };

  const stamp = (version: number, epoch = '0123456789abcdef') => ({ epoch, version });

  it('normalizes the query and builds q:<tenant>:<slug>:v<version>.<epoch>:<hash16>', () => {
    expect(normalizeQuery(base.query)).toBe('refund policy');
    const key = retrievalCacheKey(normalizeRequest(base), stamp(7));
    expect(key).toMatch(/^q:default:refund-policy:v7\.0123456789abcdef:[0-9a-f]{16}$/);
  });

  it("keys by the tenant's version when the stamp has one, and by the generation after a re-embed", () => {
    const req = normalizeRequest(base);
    expect(retrievalCacheKey(req, { ...stamp(9), tenantVersion: 4 })).toMatch(/^q:default:refund-policy:v4\.0123456789abcdef:[0-9a-f]{16}$/);
    // Other tenants' writes move the corpus version, not the tenant's: the key stays.
    expect(retrievalCacheKey(req, { ...stamp(12), tenantVersion: 4 })).toBe(retrievalCacheKey(req, { ...stamp(9), tenantVersion: 4 }));
    expect(retrievalCacheKey(req, { ...stamp(9), tenantVersion: 4, generation: 2 })).toMatch(/^q:default:refund-policy:v4\.0123456789abcdef\.g2:[0-9a-f]{16}$/);
    expect(retrievalCacheKey(req, { ...stamp(9), generation: 0 })).toBe(retrievalCacheKey(req, stamp(9)));
  });

  it('gives the same version of another corpus epoch (a state reset) another key', () => {
    const req = normalizeRequest(base);
    expect(retrievalCacheKey(req, stamp(1, 'aaaaaaaaaaaaaaaa'))).not.toBe(retrievalCacheKey(req, stamp(1, 'bbbbbbbbbbbbbbbb')));
  });

  it('gives equal keys to equivalent requests and different keys to any difference', () => {
    const k = (over: object, v = 1) => retrievalCacheKey(normalizeRequest({ ...base, ...over }), stamp(v));
    const a = k({ filters: { lang: ['en', 'de'], team: 'x' } });
    expect(k({ query: 'refund policy', filters: { team: 'x', lang: ['de', 'en'] } })).toBe(a);
    expect(k({ filters: { lang: ['en'], team: 'x' } })).not.toBe(a);
    expect(k({ filters: { lang: ['en', 'de'], team: 'y' } })).not.toBe(a);
    expect(k({ filters: { lang: ['en', 'de'], team: 'x' } }, 2)).not.toBe(a);
    expect(k({ limit: 5 })).not.toBe(k({}));
    expect(k({ scoreThreshold: 0.2 })).not.toBe(k({}));
    expect(k({ model: 'other' })).not.toBe(k({}));
    // Hybrid answers are keyed apart; a vector search keeps the key it had before hybrid ranking existed.
    expect(k({ hybrid: true })).not.toBe(k({}));
    expect(k({ hybrid: false })).toBe(k({}));
    expect(normalizeRequest({ ...base, hybrid: false })).not.toHaveProperty('hybrid');
    expect(k({ kind: 'context', maxChars: 500 })).not.toBe(k({ kind: 'context', maxChars: 600 }));
  });

  it('bounds the slug to 80 chars of [a-z0-9-]', () => {
    const slug = querySlug(normalizeQuery('Ünïcode & symbols!! ' + 'long '.repeat(40)));
    expect(slug.length).toBeLessThanOrEqual(80);
    expect(slug).toMatch(/^[a-z0-9-]+$/);
    expect(querySlug('???')).toBe('-');
  });

  it('maps an admin pattern onto the slug', () => {
    expect(searchPatternGlob('*Refund_Policy*')).toBe('q:*:*refund-policy*:v*');
  });
});

describe('tenantEfSearch', () => {
  it('widens the HNSW candidate list by the corpus over the tenant\'s share, within pgvector\'s bound', () => {
    expect(tenantEfSearch(40, 1000, 1000)).toBe(40);
    expect(tenantEfSearch(40, 500, 1000)).toBe(80);
    expect(tenantEfSearch(40, 300, 1000)).toBe(134);
    expect(tenantEfSearch(40, 10, 1_000_000)).toBe(1000);
    // A tenant with no chunks (nothing to find) or counts that disagree: the plain setting.
    expect(tenantEfSearch(40, 0, 1000)).toBe(40);
    expect(tenantEfSearch(40, 1200, 1000)).toBe(40);
    expect(tenantEfSearch(2000, 1000, 1000)).toBe(1000);
  });
});

describe('vectors and embeddings decoding', () => {
  it('round-trips float32 bytes and base64', () => {
    const v = new Float32Array([0.5, -1.25, 3e-8]);
    expect(Array.from(bufferToVector(vectorToBuffer(v)))).toEqual(Array.from(v));
    expect(Array.from(base64ToVector(vectorToBuffer(v).toString('base64')))).toEqual(Array.from(v));
    expect(cosine(new Float32Array([1, 0]), new Float32Array([2, 0]))).toBeCloseTo(1);
  });

  it('accepts base64 and float answers in any index order, rejects malformed ones', () => {
    const b64 = vectorToBuffer(new Float32Array([1, 2])).toString('base64');
    const res = decodeEmbeddings({ data: [{ index: 1, embedding: [3, 4] }, { index: 0, embedding: b64 }], model: 'm' }, 2);
    expect(res.model).toBe('m');
    expect(res.vectors.map((v) => Array.from(v))).toEqual([[1, 2], [3, 4]]);
    expect(() => decodeEmbeddings({ data: [] }, 1)).toThrow(/malformed/);
    expect(() => decodeEmbeddings({ data: [{ index: 0, embedding: [1] }, { index: 1, embedding: [1, 2] }], model: 'm' }, 2)).toThrow(/dimension/);
  });
});

describe('buildContext', () => {
  const section = (i: number, len: number) => ({ documentId: `d${i}`, title: `T${i}`, chunkIndex: 0, text: 'a '.repeat(len / 2).trim(), score: 1 - i / 10 });

  it('gives section n citation n and stays within maxChars', () => {
    const b = buildContext([section(1, 100), section(2, 100), { ...section(3, 100), source: 's.md' }], 1000);
    expect(b.truncated).toBe(false);
    expect(b.sections.map((s) => s.citation.id)).toEqual([1, 2, 3]);
    expect(b.sections.map((s) => s.citation.documentId)).toEqual(['d1', 'd2', 'd3']);
    expect(b.sections[2]?.citation.source).toBe('s.md');
    for (const s of b.sections) expect(b.text).toContain(`[${s.citation.id}] ${s.text}`);
    expect(b.text.startsWith('[1] ')).toBe(true);
    expect(b.text).toContain('\n\n[2] ');
    expect(b.text.length).toBeLessThanOrEqual(1000);
  });

  it('never cuts a section inside a surrogate pair', () => {
    const b = buildContext([{ documentId: 'e', title: 'Emoji', chunkIndex: 0, text: '😀'.repeat(300), score: 1 }], 250);
    expect(b.truncated).toBe(true);
    expect(b.text.length).toBeLessThanOrEqual(250);
    expect(b.text).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])/);
    expect(b.sections[0]?.text).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])/);
  });

  it('cuts the section that does not fit and says so', () => {
    const b = buildContext([section(1, 150), section(2, 400), section(3, 100)], 300);
    expect(b.truncated).toBe(true);
    expect(b.text.length).toBeLessThanOrEqual(300);
    expect(b.sections).toHaveLength(2);
    expect(b.sections[1]?.text.endsWith('…')).toBe(true);
  });
});

describe('CorpusIndex', () => {
  const meta = (id: string, lang: string): DocumentMeta => ({
    id, title: id, metadata: { lang }, createdAt: '', chunkCount: 2, contentHash: '', model: 'm', dimensions: 2, chunkSize: 800, chunkOverlap: 100,
  });
  let stamp = { epoch: 'e1', version: 1 };
  const snapshot = () => ({
    stamp,
    documents: [
      { tenant: 'default', meta: meta('a', 'en'), chunks: [{ text: 'a0', vector: new Float32Array([1, 0]) }, { text: 'a1', vector: new Float32Array([0, 1]) }] },
      { tenant: 'default', meta: meta('b', 'de'), chunks: [{ text: 'b0', vector: new Float32Array([1, 1]) }, { text: 'b1', vector: new Float32Array([-1, 0]) }] },
    ],
  });

  it('ranks by cosine with filters, threshold and limit, reloading when the stamp changes', async () => {
    let loads = 0;
    const index = new CorpusIndex(async () => {
      loads++;
      return snapshot();
    });
    await index.ensureStamp(stamp);
    await index.ensureStamp({ ...stamp });
    expect(loads).toBe(1);
    const r = index.search('default', new Float32Array([1, 0]), { limit: 3, filters: {} });
    expect(r.hits.map((h) => `${h.meta.id}${h.chunkIndex}`)).toEqual(['a0', 'b0', 'a1']);
    expect(r.total).toBe(4);
    expect(index.search('default', new Float32Array([1, 0]), { limit: 10, filters: { lang: 'de' } }).hits.map((h) => h.text)).toEqual(['b0', 'b1']);
    expect(index.search('default', new Float32Array([1, 0]), { limit: 10, filters: {}, scoreThreshold: 0.5 }).total).toBe(2);
    stamp = { epoch: 'e1', version: 2 };
    await index.ensureStamp(stamp);
    expect(loads).toBe(2);
    expect(index.stamp).toEqual(stamp);
    // A state reset: the version is 1 again, in another epoch.
    stamp = { epoch: 'e2', version: 1 };
    await index.ensureStamp(stamp);
    expect(loads).toBe(3);
    // Only the next version of the same epoch is applied in place.
    expect(index.applyDelete('default', 'a', { epoch: 'e1', version: 2 })).toBe(false);
    expect(index.applyDelete('default', 'a', { epoch: 'e2', version: 2 })).toBe(true);
    expect(index.stamp).toEqual({ epoch: 'e2', version: 2 });
  });

  it('keeps only the best `limit` chunks, in the full ranking\'s order, ties by document id then chunk', async () => {
    // Few distinct directions: many exact ties, in documents whose ids sort differently from their load order.
    const dirs = [new Float32Array([1, 0]), new Float32Array([0.6, 0.8]), new Float32Array([0, 1]), new Float32Array([-1, 0])];
    const documents = Array.from({ length: 30 }, (_, d) => ({
      tenant: 'default',
      meta: { ...meta(`doc-${(d * 7) % 30}`, 'en'), chunkCount: 5 },
      chunks: Array.from({ length: 5 }, (_, i) => ({ text: `${d}/${i}`, vector: dirs[(d + i * 3) % dirs.length]! })),
    }));
    const index = new CorpusIndex(async () => ({ stamp: { epoch: 'x', version: 1 }, documents }));
    await index.reload();
    const query = new Float32Array([1, 0.2]);
    const qn = Math.hypot(1, 0.2);
    const reference = documents
      .flatMap((doc) => doc.chunks.map((c, i) => ({ id: doc.meta.id, i, score: (c.vector[0]! * 1 + c.vector[1]! * 0.2) / (qn * Math.hypot(c.vector[0]!, c.vector[1]!)) })))
      .sort((a, b) => b.score - a.score || a.id.localeCompare(b.id) || a.i - b.i)
      .map((h) => `${h.id}#${h.i}`);
    for (const limit of [1, 7, 50, 150]) {
      const r = index.search('default', query, { limit, filters: {} });
      expect(r.total).toBe(150);
      expect(r.hits.map((h) => `${h.meta.id}#${h.chunkIndex}`)).toEqual(reference.slice(0, limit));
    }
  });
});
