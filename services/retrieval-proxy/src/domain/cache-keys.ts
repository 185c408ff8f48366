import { createHash } from 'node:crypto';
import type { CorpusStamp } from './document-store.js';
import { normalizeFilters, type Filters } from './filters.js';
import { TENANT_RE } from '@aicache/auth';

export const MAX_SLUG_LENGTH = 80;

/** Trimmed, lower-cased, whitespace runs collapsed to one space. Also what gets embedded. */
export function normalizeQuery(query: string): string {
  return query.normalize('NFKC').trim().toLowerCase().replace(/\s+/g, ' ');
}

/** `[a-z0-9-]`, at most 80 chars: runs of anything else become one dash. */
export function querySlug(normalizedQuery: string): string {
  const slug = normalizedQuery
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, MAX_SLUG_LENGTH)
    .replace(/-+$/, '');
  return slug.length > 0 ? slug : '-';
}

export interface RetrievalRequest {
  /** Whose documents are searched: part of the key, so an answer is only ever served to its own tenant. */
  tenant: string;
  kind: 'search' | 'context';
  query: string;
  limit: number;
  filters?: Filters | undefined;
  scoreThreshold?: number | undefined;
  maxChars?: number | undefined;
  /** Embedding model asked of the worker ('' = the worker's default). */
  model: string;
  /** Hybrid ranking (vector + full text), as the request resolved it. */
  hybrid?: boolean | undefined;
}

export interface NormalizedRequest {
  tenant: string;
  kind: 'search' | 'context';
  query: string;
  limit: number;
  filters: Filters;
  scoreThreshold: number | null;
  maxChars: number | null;
  model: string;
  /** Present (true) only for a hybrid search: a vector search's key is the one it was before hybrid ranking existed. */
  hybrid?: true;
}

export function normalizeRequest(req: RetrievalRequest): NormalizedRequest {
  return {
    tenant: req.tenant,
    kind: req.kind,
    query: normalizeQuery(req.query),
    limit: req.limit,
    filters: normalizeFilters(req.filters),
    scoreThreshold: req.scoreThreshold ?? null,
    maxChars: req.kind === 'context' ? (req.maxChars ?? null) : null,
    model: req.model,
    ...(req.hybrid ? { hybrid: true as const } : {}),
  };
}

/** Stable JSON: objects with sorted keys (normalizeRequest already sorts filters; this makes it unconditional). */
function stableStringify(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  if (value && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    return `{${Object.keys(obj)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableStringify(obj[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * `q:<tenant>:<slug>:v<version>.<epoch>[.g<generation>]:<sha256(normalized request) 16 hex>`. The tenant says whose
 * answer it is (and is hashed too, with the rest of the request): no tenant is ever served another's. The slug lets
 * admins invalidate by query text; the hash covers the whole request, so requests differing in any field never share
 * an entry. The version is the tenant's (the corpus version of its last write, else the corpus's): every entry of the
 * tenant written before one of its ingests or deletes is unreachable after it, while other tenants' writes leave it be.
 * The epoch does the same for a state reset (whose version numbers start again at 1), the generation (Redis engine,
 * after a re-embed) for a switch of the vectors under the same model.
 */
export function retrievalCacheKey(req: NormalizedRequest, stamp: CorpusStamp): string {
  if (!TENANT_RE.test(req.tenant)) throw new RangeError(`not a tenant id: ${JSON.stringify(req.tenant)}`);
  const hash = createHash('sha256').update(stableStringify(req)).digest('hex').slice(0, 16);
  const generation = stamp.generation ? `.g${stamp.generation}` : '';
  return `q:${req.tenant}:${querySlug(req.query)}:v${stamp.tenantVersion ?? stamp.version}.${stamp.epoch}${generation}:${hash}`;
}

/**
 * Admin pattern (chars [A-Za-z0-9*?_-], no ':') -> glob over the key part, matched against the query slug, for every
 * tenant. Neither tenants nor slugs contain ':', and ':v' follows only the slug, so the pattern can only ever match
 * a whole slug: `q:*:refund:v*` does not reach `q:<tenant>:refund-policy:...`.
 */
export function searchPatternGlob(pattern: string): string {
  // Slugs are lower-case and never contain '_' (it becomes '-'), so map the pattern the same way.
  const slugPattern = pattern.toLowerCase().replace(/_/g, '-');
  return `q:*:${slugPattern}:v*`;
}

export const SEARCH_PATTERN_RE = /^[A-Za-z0-9*?_-]{1,200}$/;
