import { createHash } from 'node:crypto';

const SURROGATE = /[\ud800-\udfff]/;

/**
 * sha256 (hex) of a JS string without loss. For well-formed text it is the sha256 of the UTF-8 bytes,
 * so a client can compute it from its file. UTF-8 cannot hold a lone surrogate (Buffer.from turns it
 * into U+FFFD, so "\ud800" and "\ufffd" would share a hash): those are hashed as WTF-8, the
 * 3-byte form UTF-8 would give them (ED A0 80 for U+D800), bytes no valid UTF-8 text contains.
 */
export function textSha256(text: string): string {
  const hash = createHash('sha256');
  if (!SURROGATE.test(text)) return hash.update(text, 'utf8').digest('hex');
  let from = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    if (c <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++;
        continue;
      }
    }
    if (i > from) hash.update(text.slice(from, i), 'utf8');
    hash.update(Uint8Array.of(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)));
    from = i + 1;
  }
  if (from < text.length) hash.update(text.slice(from), 'utf8');
  return hash.digest('hex');
}
