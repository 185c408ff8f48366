/** Float32 vectors <-> bytes (little-endian, the worker's base64 format) and cosine helpers. */

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Raw float32 LE bytes of a vector (a copy). */
export function vectorToBuffer(v: Float32Array): Buffer {
  if (LITTLE_ENDIAN) return Buffer.from(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
  const out = Buffer.alloc(v.length * 4);
  for (let i = 0; i < v.length; i++) out.writeFloatLE(v[i] ?? 0, i * 4);
  return out;
}

/** Float32Array from float32 LE bytes (copied, so alignment of the source never matters). */
export function bufferToVector(buf: Uint8Array): Float32Array {
  if (buf.byteLength % 4 !== 0) throw new RangeError(`vector byte length ${buf.byteLength} is not a multiple of 4`);
  const n = buf.byteLength / 4;
  if (LITTLE_ENDIAN) {
    const copy = new Uint8Array(buf.byteLength);
    copy.set(buf);
    return new Float32Array(copy.buffer, 0, n);
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

export function base64ToVector(b64: string): Float32Array {
  return bufferToVector(Buffer.from(b64, 'base64'));
}

/** Unit-length copy; a zero vector stays zero (its cosine with anything is 0). */
export function normalize(v: Float32Array): Float32Array {
  let sum = 0;
  for (let i = 0; i < v.length; i++) {
    const x = v[i] ?? 0;
    sum += x * x;
  }
  const out = new Float32Array(v.length);
  if (sum === 0 || !Number.isFinite(sum)) return out;
  const inv = 1 / Math.sqrt(sum);
  for (let i = 0; i < v.length; i++) out[i] = (v[i] ?? 0) * inv;
  return out;
}

/** Dot product of `a` with the `dims`-long row at `offset` of `matrix`. */
export function dotAt(a: Float32Array, matrix: Float32Array, offset: number, dims: number): number {
  let s = 0;
  for (let i = 0; i < dims; i++) s += (a[i] as number) * (matrix[offset + i] as number);
  return s;
}

export function cosine(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new RangeError('vectors differ in length');
  return dotAt(normalize(a), normalize(b), 0, a.length);
}
