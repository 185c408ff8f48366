import { beforeEach, describe, expect, it } from 'vitest';
import { embeddingCacheKey } from '../src/domain/embedding-service.js';
import { LocalHashProvider, LOCAL_HASH_DIMENSIONS } from '../src/providers/local-hash.js';
import { useFixture } from './helpers.js';

const DB = 3;
const f = useFixture(DB);

interface EmbeddingsBody {
  object: string;
  data: Array<{ object: string; index: number; embedding: number[] | string }>;
  model: string;
  usage: { prompt_tokens: number; total_tokens: number };
}

function post(body: unknown) {
  return f.app.inject({ method: 'POST', url: '/api/v1/embeddings', payload: body as object });
}

function redisKey(input: string, model = 'local-hash-384'): string {
  return f.app.cache.category('embeddings').key(embeddingCacheKey(model, input));
}

beforeEach(() => f.provider.reset());

describe('POST /api/v1/embeddings', () => {
  it('answers a single string in the OpenAI shape with the default model', async () => {
    const res = await post({ input: 'hello embeddings' });
    expect(res.statusCode).toBe(200);
    const body = res.json<EmbeddingsBody>();
    expect(body.object).toBe('list');
    expect(body.model).toBe('local-hash-384');
    expect(body.data).toHaveLength(1);
    expect(body.data[0]!.object).toBe('embedding');
    expect(body.data[0]!.index).toBe(0);
    expect(body.data[0]!.embedding).toHaveLength(LOCAL_HASH_DIMENSIONS);
    expect(body.usage).toEqual({ prompt_tokens: 2, total_tokens: 2 });
  });

  it('computes only the 7 misses of 10 inputs when 3 are cached, and stores raw float32 bytes', async () => {
    const inputs = Array.from({ length: 10 }, (_, i) => `batch document ${i} about caching`);
    const warm = await post({ input: [inputs[1], inputs[4], inputs[8]] });
    expect(warm.headers['x-cache']).toBe('miss');
    expect(f.provider.computed).toBe(3);
    f.provider.reset();

    const res = await post({ input: inputs });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-cache']).toBe('partial');
    expect(f.provider.calls).toHaveLength(1); // one provider call for all misses
    expect(f.provider.computed).toBe(7);
    expect(f.provider.calls[0]).not.toContain(inputs[4]);

    const body = res.json<EmbeddingsBody>();
    expect(body.data.map((d) => d.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    for (const input of inputs) {
      const len = await f.env.inspect.strlen(redisKey(input));
      // 4 bytes per dimension plus the cache library's small header, not JSON text.
      expect(len).toBeGreaterThanOrEqual(4 * LOCAL_HASH_DIMENSIONS);
      expect(len).toBeLessThanOrEqual(4 * LOCAL_HASH_DIMENSIONS + 16);
      expect(await f.env.inspect.ttl(redisKey(input))).toBeGreaterThan(0);
    }

    f.provider.reset();
    const again = await post({ input: inputs });
    expect(again.headers['x-cache']).toBe('hit');
    expect(f.provider.computed).toBe(0);
    expect(again.json<EmbeddingsBody>().data).toEqual(body.data);
  });

  it('gives the same vector for the same text, computed or cached', async () => {
    const first = (await post({ input: 'stable vector text' })).json<EmbeddingsBody>().data[0]!.embedding;
    const second = (await post({ input: 'stable vector text' })).json<EmbeddingsBody>().data[0]!.embedding;
    const fresh = Array.from((await new LocalHashProvider().embed(['stable vector text']))[0]!);
    expect(second).toEqual(first);
    expect(first).toEqual(fresh);
  });

  it('computes duplicate inputs in one batch once and answers every position', async () => {
    const res = await post({ input: ['dup alpha', 'dup beta', 'dup alpha', 'dup alpha', 'dup beta'] });
    expect(res.statusCode).toBe(200);
    expect(f.provider.computed).toBe(2);
    const data = res.json<EmbeddingsBody>().data;
    expect(data).toHaveLength(5);
    expect(data[2]!.embedding).toEqual(data[0]!.embedding);
    expect(data[4]!.embedding).toEqual(data[1]!.embedding);
    expect(data[0]!.embedding).not.toEqual(data[1]!.embedding);
  });

  it('answers base64 of float32 little-endian when asked', async () => {
    const floats = (await post({ input: 'base64 please' })).json<EmbeddingsBody>().data[0]!.embedding as number[];
    const res = await post({ input: 'base64 please', encoding_format: 'base64' });
    const b64 = res.json<EmbeddingsBody>().data[0]!.embedding as string;
    const buf = Buffer.from(b64, 'base64');
    expect(buf.length).toBe(4 * LOCAL_HASH_DIMENSIONS);
    const decoded = Array.from({ length: LOCAL_HASH_DIMENSIONS }, (_, i) => buf.readFloatLE(i * 4));
    expect(decoded).toEqual(floats);
  });

  it('accepts the model by name and OpenAI-only fields', async () => {
    const res = await post({ model: 'local-hash-384', input: ['x'], encoding_format: 'float', user: 'u1', dimensions: 384 });
    expect(res.statusCode).toBe(200);
  });

  describe('rejects malformed requests with 400 and a clear message, leaving the cache as it was', () => {
    const cases: Array<[string, unknown, RegExp]> = [
      ['missing input', {}, /input/],
      ['input is a number', { input: 5 }, /input must be string, or .*input must be array/],
      ['input array of numbers', { input: [1, 2] }, /input\/0 must be string/],
      ['empty string', { input: '' }, /input/],
      ['empty array', { input: [] }, /input/],
      ['empty string in array', { input: ['ok', ''] }, /input\/1/],
      ['input over 32768 characters', { input: ['ok', 'a'.repeat(32_769)] }, /^input\[1\] has 32769 characters; model 'local-hash-384' accepts at most 32768$/],
      ['unknown property', { input: 'a', temperature: 1 }, /unknown properties: temperature/],
      ['bad encoding_format', { input: 'a', encoding_format: 'hex' }, /encoding_format/],
      ['unknown model', { input: 'a', model: 'gpt-99' }, /unknown model 'gpt-99'.*local-hash-384/],
      ['model too long', { input: 'a', model: 'm'.repeat(201) }, /model/],
      ['dimensions the model does not have', { input: 'a', dimensions: 1536 }, /384 dimensions/],
      ['body not an object', ['a'], /body/],
    ];

    it.each(cases)('%s', async (_name, body, message) => {
      const keep = 'survivor text for malformed requests';
      await post({ input: keep });
      const before = await f.env.inspect.getBuffer(redisKey(keep));
      expect(before).not.toBeNull();

      f.provider.reset();
      const res = await post(body);
      expect(res.statusCode).toBe(400);
      const err = res.json<{ error: { message: string; type: string } }>().error;
      expect(err.type).toBe('invalid_request_error');
      expect(err.message).toMatch(message);
      expect(f.provider.computed).toBe(0);
      expect(await f.env.inspect.getBuffer(redisKey(keep))).toEqual(before);
    });

    it('invalid JSON', async () => {
      const res = await f.app.inject({ method: 'POST', url: '/api/v1/embeddings', payload: '{"input": ', headers: { 'content-type': 'application/json' } });
      expect(res.statusCode).toBe(400);
    });
  });
});
