import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getTestRedis, scanKeys, startRedisServer, type RedisServer, type TestRedis } from '@aicache/test-redis';
import { Redis } from 'ioredis';
import { build, startFakeProxy, testConfig, type FakeProxy } from './helpers.js';

const DB = 9;
let cacheRedis: TestRedis;
let state: RedisServer;
let raw: Redis;
let proxy: FakeProxy;
let app: Awaited<ReturnType<typeof build>>;

beforeAll(async () => {
  cacheRedis = await getTestRedis();
  // The state Redis is private: this file pauses it.
  state = await startRedisServer();
  raw = new Redis(state.url, { db: DB, maxRetriesPerRequest: 1 });
  proxy = await startFakeProxy();
  app = await build(testConfig(cacheRedis.url, DB, { RETRIEVAL_PROXY_URL: proxy.url, REDIS_STATE_URL: state.url, STATE_TIMEOUT_MS: '500' }));
});

afterAll(async () => {
  state?.resume();
  await app?.close();
  await proxy?.close();
  raw?.disconnect();
  await state?.stop();
  await cacheRedis?.stop();
});

const stateKeys = () => scanKeys(raw, 'state:ai-agents:*');

describe('a paused state Redis', () => {
  it('a write that times out answers 503 with Retry-After, and does not land when Redis resumes', async () => {
    const agent = (await app.inject({ method: 'POST', url: '/api/v1/agents', payload: { name: 'Before' } })).json();
    const conversation = (await app.inject({ method: 'POST', url: `/api/v1/agents/${agent.id}/conversations`, payload: {} })).json();
    const before = await stateKeys();
    const snapshot = await Promise.all(before.map((k) => raw.dump(k)));

    state.pause();
    let answers;
    try {
      answers = await Promise.all([
        app.inject({ method: 'POST', url: '/api/v1/agents', payload: { name: 'During the pause' } }),
        app.inject({ method: 'PATCH', url: `/api/v1/agents/${agent.id}`, payload: { name: 'Renamed during the pause' } }),
        app.inject({ method: 'POST', url: `/api/v1/agents/${agent.id}/conversations`, payload: { title: 'During the pause' } }),
        app.inject({ method: 'DELETE', url: `/api/v1/conversations/${conversation.id}` }),
        app.inject({ method: 'DELETE', url: `/api/v1/agents/${agent.id}/memory` }),
        app.inject({ method: 'GET', url: '/api/v1/agents' }),
      ]);
    } finally {
      state.resume();
    }
    for (const res of answers) {
      expect(res.statusCode, res.body).toBe(503);
      expect(res.json()).toMatchObject({ code: 'STATE_UNAVAILABLE', message: expect.stringMatching(/^agent store is unavailable: /) });
      expect(res.headers['retry-after']).toBe('1');
    }

    // Redis now runs what was sent during the pause, past every deadline: nothing changes.
    expect(await raw.ping()).toBe('PONG');
    expect(await stateKeys()).toEqual(before);
    expect(await Promise.all(before.map((k) => raw.dump(k)))).toEqual(snapshot);
    const list = await app.inject({ method: 'GET', url: '/api/v1/agents' });
    expect(list.statusCode).toBe(200);
    expect(list.json().items.map((a: { name: string }) => a.name)).toEqual(['Before']);
  });

  it('a message sent during the pause is not stored later', async () => {
    const agent = (await app.inject({ method: 'POST', url: '/api/v1/agents', payload: { name: 'Chat' } })).json();
    const conversation = (await app.inject({ method: 'POST', url: `/api/v1/agents/${agent.id}/conversations`, payload: {} })).json();
    // The conversation is read before the pause; the pause then catches the write of the user message.
    const release = proxy.hold();
    const calls = proxy.calls.length;
    const pending = app.inject({ method: 'POST', url: `/api/v1/conversations/${conversation.id}/messages`, payload: { content: 'What is AOF?' } });
    for (let i = 0; i < 500 && proxy.calls.length === calls; i++) await new Promise((r) => setTimeout(r, 10));
    expect(proxy.calls.length).toBe(calls + 1);
    state.pause();
    release();
    let res;
    try {
      res = await pending;
    } finally {
      state.resume();
    }
    // The reply could not be stored: 503, and neither it nor the memory lands after the resume.
    expect(res.statusCode, res.body).toBe(503);
    expect(res.headers['retry-after']).toBe('1');
    expect(await raw.ping()).toBe('PONG');
    const history = (await app.inject({ url: `/api/v1/conversations/${conversation.id}/messages` })).json();
    expect(history.items.map((m: { role: string }) => m.role)).toEqual(['user']);
    expect(await raw.exists(`state:ai-agents:memory:${agent.id}`)).toBe(0);
  });
});
