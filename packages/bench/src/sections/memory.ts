import { ourCache, ready } from '../ours.js';
import { makeEmbedding } from '../payload.js';
import { client } from '../redis.js';
import { fmtBytes, fmtNum, ROW_TITLES, type Row } from '../results.js';
import type { SectionContext } from './context.js';

const DB = 6;

/**
 * Row 6: MEMORY USAGE (SAMPLES 0: exact for a string) of one cached 1,536-dim embedding written by
 * category.set, against the same vector stored as the JSON number array a naive cache would write
 * (JSON.stringify(Array.from(vector))).
 */
export async function memorySection(ctx: SectionContext): Promise<{ rows: Row[]; details: unknown }> {
  const dims = ctx.params.memory.dims;
  const cache = ourCache(ctx.redisUrl, 'bench-mem', { embeddings: { ttl: 86400 } }, DB);
  const cat = cache.category('embeddings');
  const admin = client(ctx.redisUrl, DB);
  try {
    await ready(cache);
    const vec = makeEmbedding(dims, 42);
    if (!(await cat.set('vec', vec))) throw new Error('set failed');
    const back = await cat.get<Float32Array>('vec');
    if (!(back instanceof Float32Array) || back.length !== dims || back[dims - 1] !== vec[dims - 1]) throw new Error('get did not return the stored Float32Array');
    const ourKey = cat.key('vec');
    const jsonKey = 'bench-mem-json:vec';
    const json = JSON.stringify(Array.from(vec));
    await admin.set(jsonKey, json, 'EX', 86400);
    const usage = async (k: string): Promise<number> => Number(await admin.call('MEMORY', 'USAGE', k, 'SAMPLES', '0'));
    const [ours, theirs, ourLen] = await Promise.all([usage(ourKey), usage(jsonKey), admin.strlen(ourKey).catch(() => -1)]);
    const ratio = ours / theirs;
    const row: Row = {
      id: '6',
      figure: ROW_TITLES['6'],
      ours: `${fmtNum(ours)} B (${fmtBytes(ours)})`,
      baseline: `JSON array: ${fmtNum(theirs)} B (${fmtBytes(theirs)})`,
      ratio,
      target: '<= 0.30x',
      status: ratio <= 0.3 ? 'met' : 'missed',
      note: `MEMORY USAGE ... SAMPLES 0 of each key (key name, value, Redis overhead); our value is ${ourLen} B for ${dims * 4} B of float32; the JSON text is ${fmtNum(json.length)} B`,
    };
    await admin.del(jsonKey);
    return { rows: [row], details: { dims, ours, json: theirs, ourValueBytes: ourLen, jsonTextBytes: json.length } };
  } finally {
    await cache.close();
    admin.disconnect();
  }
}
