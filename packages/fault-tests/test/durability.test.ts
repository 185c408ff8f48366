/**
 * State durability of ai-agents: messages acknowledged (201) before a kill -9 of an AOF state Redis are there
 * after a restart. appendfsync everysec may lose at most about the last second of acknowledged writes (in
 * practice a process kill loses none: the AOF buffer is written to the kernel before the reply goes out; only
 * an OS crash or power loss loses the unsynced second); appendfsync always loses nothing. Also: an evicting
 * (allkeys-lru) state Redis makes boot warn, and STATE_REQUIRE_DURABLE=true refuses it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@aicache/service-kit';
import type { RedisServer } from '@aicache/test-redis';
import { LogSink, now, printFigures, recordFigures, round } from '../src/index.js';
import { agentsCfg, buildAgents, Servers, startFakeProxy } from './helpers.js';

/** How long messages are posted before the kill: long enough that some were acknowledged > 1 s before it. */
const POST_FOR_MS = 2_500;
/** everysec: what may be lost is what was acknowledged within about the last second (Redis' documented bound). */
const EVERYSEC_WINDOW_MS = 1_000;

const servers = new Servers();
const figures: Record<string, unknown> = {};
let proxy: Awaited<ReturnType<typeof startFakeProxy>>;
let cacheRedis: RedisServer;

beforeAll(async () => {
  proxy = await startFakeProxy();
  cacheRedis = await servers.start();
});

afterAll(async () => {
  await proxy?.close();
  await servers.stopAll();
  if (Object.keys(figures).length) recordFigures('durability', figures);
});

interface Acked {
  content: string;
  ackedAt: number;
}

const config = (state: RedisServer, extra: Record<string, string> = {}) =>
  agentsCfg({ REDIS_URL: cacheRedis.url, REDIS_STATE_URL: state.url, RETRIEVAL_PROXY_URL: proxy.url, ...extra });

async function messagesOf(app: Awaited<ReturnType<typeof buildAgents>>, conversationId: string): Promise<Array<{ role: string; content: string }>> {
  const all: Array<{ role: string; content: string }> = [];
  let before: string | null | undefined;
  for (;;) {
    const qs = `limit=200${before ? `&before=${before}` : ''}`;
    const r = await app.inject({ method: 'GET', url: `/api/v1/conversations/${conversationId}/messages?${qs}` });
    expect(r.statusCode, r.body).toBe(200);
    const page = r.json<{ items: Array<{ role: string; content: string }>; nextCursor: string | null }>();
    all.unshift(...page.items);
    if (!page.nextCursor) return all;
    before = page.nextCursor;
  }
}

async function killAndCount(appendfsync: 'everysec' | 'always') {
  const state = await servers.start({ appendfsync, args: ['--maxmemory-policy', 'noeviction'] });
  let app = await buildAgents(config(state), { logger: false, underPressure: false });
  const acked: Acked[] = [];
  let conversationId: string;
  let tKill: number;
  try {
    const agent = await app.inject({ method: 'POST', url: '/api/v1/agents', payload: { name: `durable-${appendfsync}` } });
    expect(agent.statusCode, agent.body).toBe(201);
    const conv = await app.inject({ method: 'POST', url: `/api/v1/agents/${agent.json<{ id: string }>().id}/conversations`, payload: {} });
    expect(conv.statusCode, conv.body).toBe(201);
    conversationId = conv.json<{ id: string }>().id;

    const until = now() + POST_FOR_MS;
    for (let i = 0; now() < until; i++) {
      const content = `message ${i} about appendfsync ${appendfsync} ${Math.random().toString(36).slice(2)}`;
      const r = await app.inject({ method: 'POST', url: `/api/v1/conversations/${conversationId}/messages`, payload: { content } });
      expect(r.statusCode, r.body).toBe(201);
      acked.push({ content, ackedAt: now() });
    }
    tKill = now();
    await state.kill();
    await state.restart();
  } finally {
    await app.close();
  }

  // A new process would start here: a fresh app on the restarted server, same data dir.
  app = await buildAgents(config(state), { logger: false, underPressure: false });
  try {
    const stored = await messagesOf(app, conversationId);
    const users = new Set(stored.filter((m) => m.role === 'user').map((m) => m.content));
    const replies = stored.filter((m) => m.role === 'assistant').length;
    const lost = acked.filter((a) => !users.has(a.content));
    const old = acked.filter((a) => a.ackedAt < tKill - EVERYSEC_WINDOW_MS);
    const lostOld = lost.filter((a) => a.ackedAt < tKill - EVERYSEC_WINDOW_MS);
    const fig = {
      appendfsync,
      acknowledged: acked.length,
      acknowledgedMoreThan1sBeforeKill: old.length,
      lost: lost.length,
      lostMoreThan1sBeforeKill: lostOld.length,
      lostWithinLastSecond: lost.length - lostOld.length,
      oldestLostMsBeforeKill: lost.length ? round(tKill - Math.min(...lost.map((a) => a.ackedAt))) : null,
      repliesStored: replies,
      messagesPerSecond: round(acked.length / (POST_FOR_MS / 1000)),
    };
    figures[appendfsync] = fig;
    printFigures(`ai-agents state durability — appendfsync ${appendfsync}, kill -9`, Object.entries(fig));
    return { fig, lost, lostOld, old, replies };
  } finally {
    await app.close();
  }
}

describe('ai-agents: acknowledged messages survive kill -9 of an AOF state Redis', () => {
  it('appendfsync everysec: every message acknowledged more than ~1 s before the kill is there after restart', async () => {
    const { old, lostOld, fig } = await killAndCount('everysec');
    expect(old.length, 'no message was acknowledged more than 1 s before the kill: nothing was tested').toBeGreaterThan(0);
    expect(lostOld.map((a) => a.content)).toEqual([]);
    // Replies are written after the user message: each acknowledged message has its reply too.
    expect(fig.repliesStored).toBeGreaterThanOrEqual(fig.acknowledged - fig.lost);
  });

  it('appendfsync always: every acknowledged message is there after restart', async () => {
    const { lost, fig } = await killAndCount('always');
    expect(fig.acknowledged).toBeGreaterThan(0);
    expect(lost.map((a) => a.content)).toEqual([]);
    expect(fig.repliesStored).toBeGreaterThanOrEqual(fig.acknowledged);
  });
});

describe('ai-agents: an evicting state Redis', () => {
  it('allkeys-lru: boot warns in the log naming the policy and the fix, and the service serves', async () => {
    const state = await servers.start({ appendfsync: 'everysec', args: ['--maxmemory-policy', 'allkeys-lru'] });
    const sink = new LogSink();
    const cfg = config(state, { LOG_LEVEL: 'info' });
    const app = await buildAgents(cfg, { logger: createLogger(cfg, sink), underPressure: false });
    try {
      const r = await app.inject({ method: 'POST', url: '/api/v1/agents', payload: { name: 'lru' } });
      expect(r.statusCode).toBe(201);
    } finally {
      await app.close();
    }
    const warnings = sink.entries().filter((e) => e.level === 40 && /not durable/i.test(String(e.msg)));
    expect(warnings.length, sink.text.slice(0, 2000)).toBeGreaterThan(0);
    expect(String(warnings[0]!.msg)).toMatch(/allkeys-lru/);
    expect(String(warnings[0]!.msg)).toMatch(/noeviction/);
    figures.allkeysLruWarning = String(warnings[0]!.msg);
  });

  it('allkeys-lru with STATE_REQUIRE_DURABLE=true: boot is refused, naming the policy', async () => {
    const state = await servers.start({ appendfsync: 'everysec', args: ['--maxmemory-policy', 'allkeys-lru'] });
    await expect(buildAgents(config(state, { STATE_REQUIRE_DURABLE: 'true' }), { logger: false, underPressure: false })).rejects.toThrow(
      /allkeys-lru/,
    );
  });
});
