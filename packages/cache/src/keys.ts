import { createHash } from 'node:crypto';

/** Longest full key kept as written; longer ones get their key part replaced by `#<sha256>`. */
export const MAX_KEY_BYTES = 200;

/** `<service>:<category>:<key>`, or `<service>:<category>:#<sha256 hex of key>` when that is over 200 bytes. */
export function entryKey(service: string, category: string, key: string): string {
  const full = `${service}:${category}:${key}`;
  // A UTF-16 code unit is at most 3 UTF-8 bytes: a short key needs no byte count (built on every call).
  if (full.length * 3 <= MAX_KEY_BYTES || Buffer.byteLength(full) <= MAX_KEY_BYTES) return full;
  return `${service}:${category}:#${createHash('sha256').update(key).digest('hex')}`;
}

export function categoryPrefix(service: string, category: string): string {
  return `${service}:${category}:`;
}

/** Set of the full keys written with this tag. */
export function tagKey(service: string, tag: string): string {
  return `${service}:__tag:${tag}`;
}

/** Hash of service-wide counters, `<category>:<counter>` -> total over every replica. */
export function statsKey(service: string): string {
  return `${service}:__stats`;
}

/**
 * `<service>:__flushed:<replica>`: sequence number of the last stats batch that replica added (see FLUSH in
 * scripts.ts). A service clear keeps these, as it keeps the stats hash.
 */
export function flushMarkerKey(service: string, replica: string): string {
  return `${flushMarkerPrefix(service)}${replica}`;
}

export function flushMarkerPrefix(service: string): string {
  return `${service}:__flushed:`;
}

/** `<service>:__lease:<category>:<key>`: held by the one replica that runs the loader for a missing entry. */
export function leaseKey(service: string, fullKey: string): string {
  return `${service}:__lease:${fullKey.slice(service.length + 1)}`;
}

/**
 * Field of the stats hash holding a category's invalidation generation, bumped by every invalidation in the
 * category; a loader's write is dropped if it moved while the loader ran. (Kept in the one hash that clear()
 * keeps, so a service clear leaves no extra key behind.)
 */
export function genField(category: string): string {
  return `gen:${category}`;
}
