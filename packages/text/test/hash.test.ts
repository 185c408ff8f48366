import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { textSha256 } from '../src/index.js';

const utf8Sha256 = (s: string) => createHash('sha256').update(Buffer.from(s, 'utf8')).digest('hex');
const bytesSha256 = (b: number[]) => createHash('sha256').update(Uint8Array.from(b)).digest('hex');

describe('textSha256', () => {
  it.each(['', 'plain ascii', 'accents é and ß', 'emoji 😀👩‍👩‍👧', 'CJK 漢字', '\ufffd replacement itself'])('is the sha256 of the UTF-8 bytes for well-formed text (%j)', (text) => {
    expect(textSha256(text)).toBe(utf8Sha256(text));
  });

  it('tells a lone surrogate from U+FFFD, which UTF-8 would turn it into', () => {
    expect(utf8Sha256('\ud800')).toBe(utf8Sha256('\ufffd'));
    expect(textSha256('\ud800')).not.toBe(textSha256('\ufffd'));
    expect(textSha256('\ud800')).not.toBe(textSha256('\udc00'));
    expect(textSha256('a\ud800b')).not.toBe(textSha256('a\ufffdb'));
  });

  it('hashes lone surrogates as WTF-8 bytes, pairs as UTF-8', () => {
    expect(textSha256('\ud800')).toBe(bytesSha256([0xed, 0xa0, 0x80]));
    expect(textSha256('a\udfffb')).toBe(bytesSha256([0x61, 0xed, 0xbf, 0xbf, 0x62]));
    // A high surrogate at the end, a low one at the start, and a real pair in between.
    expect(textSha256('\udc00😀\ud83d')).toBe(bytesSha256([0xed, 0xb0, 0x80, 0xf0, 0x9f, 0x98, 0x80, 0xed, 0xa0, 0xbd]));
  });

  it('gives distinct hashes to distinct strings of one code unit, and to U+FFFD', () => {
    const strings = new Set<string>(['\ufffd']);
    for (let c = 0; c <= 0xffff; c += 7) strings.add(String.fromCharCode(c));
    for (let c = 0xd800; c <= 0xdfff; c++) strings.add(String.fromCharCode(c));
    const hashes = new Set([...strings].map(textSha256));
    expect(hashes.size).toBe(strings.size);
  });
});
