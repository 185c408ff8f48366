import type { FilterScalar as Scalar, FilterValue, Filters, Metadata, MetadataValue } from '@aicache/contracts';

export type { FilterValue, Filters, Metadata, MetadataValue };

/** Filter keys that match document fields instead of metadata entries. */
export const RESERVED_FILTER_KEYS = ['documentId', 'source'] as const;

export interface FilterableDocument {
  id: string;
  source?: string | undefined;
  metadata: Metadata;
}

function scalarOrder(a: Scalar, b: Scalar): number {
  const ka = `${typeof a}:${String(a)}`;
  const kb = `${typeof b}:${String(b)}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/**
 * Canonical filters: keys sorted, array values de-duplicated and sorted, one-element arrays become the
 * scalar (same meaning). Two filter objects with the same meaning give the same JSON.
 */
export function normalizeFilters(filters: Filters | undefined): Filters {
  const out: Filters = {};
  if (!filters) return out;
  for (const key of Object.keys(filters).sort()) {
    const value = filters[key] as FilterValue;
    if (Array.isArray(value)) {
      const unique: Scalar[] = [];
      const seen = new Set<string>();
      for (const v of value) {
        const k = `${typeof v}:${String(v)}`;
        if (!seen.has(k)) {
          seen.add(k);
          unique.push(v);
        }
      }
      unique.sort(scalarOrder);
      out[key] = unique.length === 1 ? (unique[0] as Scalar) : unique;
    } else {
      out[key] = value;
    }
  }
  return out;
}

function fieldValue(doc: FilterableDocument, key: string): MetadataValue | undefined {
  if (key === 'documentId') return doc.id;
  if (key === 'source') return doc.source;
  return Object.prototype.hasOwnProperty.call(doc.metadata, key) ? doc.metadata[key] : undefined;
}

/**
 * Every filter key must match (AND). A filter array means any-of. Values compare with their type
 * (the string "1" does not match the number 1). A string[] metadata value matches when any of its
 * elements matches.
 */
export function matchesFilters(doc: FilterableDocument, filters: Filters): boolean {
  for (const [key, wanted] of Object.entries(filters)) {
    const actual = fieldValue(doc, key);
    if (actual === undefined) return false;
    const wantedList = Array.isArray(wanted) ? wanted : [wanted];
    const actualList: Scalar[] = Array.isArray(actual) ? actual : [actual];
    if (!actualList.some((a) => wantedList.some((w) => w === a))) return false;
  }
  return true;
}
