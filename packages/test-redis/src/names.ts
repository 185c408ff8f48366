import { randomBytes } from 'node:crypto';

/** A name no other test file will use, for service prefixes and scratch keys. */
export function uniqueName(base = 'test'): string {
  return `${base}-${randomBytes(4).toString('hex')}`;
}
