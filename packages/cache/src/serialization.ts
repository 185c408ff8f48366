import { endianness } from 'node:os';

/**
 * Stored layout: one tag byte, an optional 12-byte header, then the payload.
 *   tag & 0x0f: value kind (JSON, utf8 string, raw bytes, float32 little-endian, undefined)
 *   tag & 0x80: a header follows: float64 LE logical expiry (epoch ms) + uint32 LE compute time (ms),
 *               used by grace (stale-while-revalidate) and XFetch early refresh.
 * A 1,536-dim Float32Array costs 6,144 + 1 (or + 13) bytes.
 */
const Kind = { Json: 1, String: 2, Bytes: 3, Float32: 4, Undefined: 5 } as const;
type Kind = (typeof Kind)[keyof typeof Kind];

const META = 0x80;
export const HEADER_BYTES = 13;
const LITTLE_ENDIAN = endianness() === 'LE';

export interface EntryMeta {
  /** Epoch ms after which the entry is stale (served only within grace). */
  expiresAt: number;
  /** How long the loader took, ms (XFetch delta). */
  delta: number;
}

export interface Decoded {
  value: unknown;
  meta?: EntryMeta;
}

function float32Bytes(arr: Float32Array): Buffer {
  if (LITTLE_ENDIAN) return Buffer.from(arr.buffer, arr.byteOffset, arr.byteLength);
  const out = Buffer.allocUnsafe(arr.byteLength);
  for (let i = 0; i < arr.length; i++) out.writeFloatLE(arr[i] as number, i * 4);
  return out;
}

function payloadOf(value: unknown): [Kind, Buffer] {
  if (value === undefined) return [Kind.Undefined, Buffer.alloc(0)];
  if (typeof value === 'string') return [Kind.String, Buffer.from(value, 'utf8')];
  if (Buffer.isBuffer(value)) return [Kind.Bytes, value];
  if (value instanceof Float32Array) return [Kind.Float32, float32Bytes(value)];
  if (value instanceof Uint8Array) return [Kind.Bytes, Buffer.from(value.buffer, value.byteOffset, value.byteLength)];
  const json = JSON.stringify(value);
  // JSON.stringify answers undefined for functions and symbols: store them as undefined rather than crash.
  if (json === undefined) return [Kind.Undefined, Buffer.alloc(0)];
  return [Kind.Json, Buffer.from(json, 'utf8')];
}

export function encode(value: unknown, meta?: EntryMeta): Buffer {
  const [kind, payload] = payloadOf(value);
  if (!meta) {
    const out = Buffer.allocUnsafe(1 + payload.length);
    out[0] = kind;
    payload.copy(out, 1);
    return out;
  }
  const out = Buffer.allocUnsafe(HEADER_BYTES + payload.length);
  out[0] = kind | META;
  out.writeDoubleLE(meta.expiresAt, 1);
  out.writeUInt32LE(Math.min(Math.max(0, Math.round(meta.delta)), 0xffffffff), 9);
  payload.copy(out, HEADER_BYTES);
  return out;
}

/** Reads only the header (works on the first HEADER_BYTES bytes, as returned by GETRANGE). */
export function decodeMeta(buf: Buffer): EntryMeta | undefined {
  const tag = buf[0];
  if (tag === undefined || (tag & META) === 0 || buf.length < HEADER_BYTES) return undefined;
  return { expiresAt: buf.readDoubleLE(1), delta: buf.readUInt32LE(9) };
}

/** Throws on bytes it did not write (caller treats that as a miss). */
export function decode(buf: Buffer): Decoded {
  const tag = buf[0];
  if (tag === undefined) throw new Error('empty cache entry');
  const meta = decodeMeta(buf);
  const start = meta ? HEADER_BYTES : 1;
  const payload = buf.subarray(start);
  let value: unknown;
  switch (tag & 0x0f) {
    case Kind.Json:
      value = JSON.parse(payload.toString('utf8'));
      break;
    case Kind.String:
      value = payload.toString('utf8');
      break;
    case Kind.Bytes:
      value = payload;
      break;
    case Kind.Float32: {
      if (payload.length % 4 !== 0) throw new Error('bad float32 entry');
      const arr = new Float32Array(payload.length / 4);
      if (LITTLE_ENDIAN) new Uint8Array(arr.buffer).set(payload);
      else for (let i = 0; i < arr.length; i++) arr[i] = payload.readFloatLE(i * 4);
      value = arr;
      break;
    }
    case Kind.Undefined:
      value = undefined;
      break;
    default:
      throw new Error(`unknown cache entry tag ${tag}`);
  }
  return meta ? { value, meta } : { value };
}
