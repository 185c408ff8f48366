import { categoryPrefix, entryKey, flushMarkerKey, flushMarkerPrefix, genField, statsKey, tagKey } from './keys.js';

/** Buckets of a service's keys on a Redis Cluster: each is one hash tag, so one slot. */
export const CLUSTER_BUCKETS = 256;

/** FNV-1a over the UTF-16 code units: cheap, stable across processes, and spreads keys evenly over the buckets. */
export function bucketOf(key: string, buckets: number): number {
  if (buckets === 1) return 0;
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % buckets;
}

/**
 * Where a service's keys live. Every key stays under `<service>:` (a service clear SCANs that).
 *
 * One server (`buckets` 1): the layout of before, unchanged: entry `<service>:<category>:<key>`, its lease
 * `<service>:__lease:<category>:<key>`, tag sets `<service>:__tag:<tag>`, the invalidation generations as fields
 * `gen:<category>` of the stats hash `<service>:__stats`, flush markers `<service>:__flushed:<replica>`.
 *
 * Cluster (`buckets` 256): the keys a script touches together must share a slot, so each entry carries its
 * bucket's hash tag `{<service>.<bb>}` (bb: two hex digits of hash(key) mod 256) right after the category
 * prefix: entry `<service>:<category>:{<service>.<bb>}<key>`, lease `<service>:__lease:<category>:{<service>.<bb>}<key>`,
 * the bucket's generations `<service>:__gen:{<service>.<bb>}` (fields `gen:<category>`) and tag sets
 * `<service>:__tag:{<service>.<bb>}<tag>`. Service and category names hold no brace, so the first `{` of a key is
 * always ours and braces in a user key never choose its slot. The stats hash keeps its name, and the flush markers
 * take its name as their tag: `<service>:__flushed:{<service>:__stats}<replica>`.
 */
export class KeyLayout {
  readonly buckets: number;
  private readonly tags: string[];

  constructor(
    readonly service: string,
    readonly cluster: boolean,
  ) {
    this.buckets = cluster ? CLUSTER_BUCKETS : 1;
    this.tags = cluster ? Array.from({ length: this.buckets }, (_, b) => `{${service}.${b.toString(16).padStart(2, '0')}}`) : [''];
  }

  /** The hash tag of bucket `b` ('' on one server). */
  tag(bucket: number): string {
    return this.tags[bucket] as string;
  }

  entry(category: string, key: string): string {
    const full = entryKey(this.service, category, key);
    if (!this.cluster) return full;
    const prefixLength = this.service.length + category.length + 2;
    return full.slice(0, prefixLength) + this.tag(bucketOf(key, this.buckets)) + full.slice(prefixLength);
  }

  /** The hash tag in a full entry (or lease) key ('' on one server). */
  tagOf(full: string): string {
    if (!this.cluster) return '';
    const open = full.indexOf('{');
    return open < 0 ? '' : full.slice(open, full.indexOf('}', open) + 1);
  }

  /** Hash holding the invalidation generations that guard this entry's writes. */
  genKeyOf(full: string): string {
    return this.cluster ? this.genKey(this.tagOf(full)) : statsKey(this.service);
  }

  /** Every generation hash of the service (one on one server). */
  genKeys(): string[] {
    return this.cluster ? this.tags.map((t) => this.genKey(t)) : [statsKey(this.service)];
  }

  genField(category: string): string {
    return genField(category);
  }

  /** Tag set of `tag` in the bucket of `full`. */
  tagKeyOf(tag: string, full: string): string {
    return this.cluster ? `${this.service}:__tag:${this.tagOf(full)}${tag}` : tagKey(this.service, tag);
  }

  /** Every bucket's set of `tag`. */
  tagKeys(tag: string): string[] {
    return this.cluster ? this.tags.map((t) => `${this.service}:__tag:${t}${tag}`) : [tagKey(this.service, tag)];
  }

  /**
   * SCAN MATCH for a glob over the key part of a category's entries: the same keys it matched before buckets (the
   * bucket tag is matched by `?`s, one per character, so a `*` or `{}` in the glob meets only the user key).
   */
  match(category: string, glob: string): string {
    const prefix = categoryPrefix(this.service, category);
    return this.cluster ? `${prefix}{${this.service}.??}${glob}` : prefix + glob;
  }

  get statsKey(): string {
    return statsKey(this.service);
  }

  flushMarker(replica: string): string {
    return this.cluster ? `${flushMarkerPrefix(this.service)}{${statsKey(this.service)}}${replica}` : flushMarkerKey(this.service, replica);
  }

  /** Keys a service clear keeps: the stats hash, the flush markers, the generations (bumped, never removed). */
  keptByClear(): { exact: string[]; prefixes: string[] } {
    return { exact: [statsKey(this.service)], prefixes: [flushMarkerPrefix(this.service), ...(this.cluster ? [`${this.service}:__gen:`] : [])] };
  }

  private genKey(tag: string): string {
    return `${this.service}:__gen:${tag}`;
  }
}
