/** `INFO` text as its fields (`name:value` lines; section headers and blank lines left out), values trimmed. */
export function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    if (!line || line.startsWith('#')) continue;
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

/**
 * A flat reply of field-value pairs, `[field, value, field, value, ...]` (a stream entry's fields, CONFIG GET, RESP2
 * HGETALL), as an object; a last field without its value is dropped.
 */
export function fieldsOf(flat: readonly unknown[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = String(flat[i + 1]);
  return out;
}

/** One stream entry with its fields as an object. */
export interface StreamEntry {
  id: string;
  fields: Record<string, string>;
}

/** Stream entries as XRANGE and XREVRANGE answer them, `[id, [field, value, ...]]`, in their order. */
export function streamEntries(rows: ReadonlyArray<readonly [string, readonly unknown[]]>): StreamEntry[] {
  return rows.map(([id, flat]) => ({ id, fields: fieldsOf(flat) }));
}
