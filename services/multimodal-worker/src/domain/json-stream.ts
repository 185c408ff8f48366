import { Readable } from 'node:stream';
import { setImmediate as yieldToLoop } from 'node:timers/promises';

/** Characters of JSON per piece written: large enough to keep the overhead low, small enough to never stall the loop. */
const PIECE_CHARS = 64 * 1024;

/**
 * A JSON answer holding one large array, as a stream: `head`, the items encoded one by one and
 * comma-separated, then `tail`. Pieces are produced as the socket takes them (so a large answer is
 * never all in memory) and the event loop gets a turn between pieces.
 */
export function jsonArrayStream<T>(head: string, items: readonly T[], encode: (item: T, index: number) => string, tail: string): Readable {
  async function* pieces() {
    let piece = head;
    for (let i = 0; i < items.length; i++) {
      piece += (i === 0 ? '' : ',') + encode(items[i]!, i);
      if (piece.length >= PIECE_CHARS) {
        yield Buffer.from(piece, 'utf8');
        piece = '';
        await yieldToLoop();
      }
    }
    yield Buffer.from(piece + tail, 'utf8');
  }
  return Readable.from(pieces(), { objectMode: false });
}

/** A vector as a JSON array of numbers (the exact numbers JSON.stringify gives for its values). */
export function vectorJson(v: Float32Array): string {
  return JSON.stringify(Array.from(v));
}

/** A vector as base64 of its float32 little-endian bytes (the byte order of every platform Node runs on in practice). */
export function vectorBase64(v: Float32Array): string {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
}
