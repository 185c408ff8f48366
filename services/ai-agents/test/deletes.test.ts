import { describe, expect, it } from 'vitest';
import { scanKeys } from '@aicache/test-redis';
import { useFixture } from './helpers.js';

const DB = 8;
const f = useFixture(DB);

const inject = (method: 'GET' | 'POST' | 'DELETE', url: string, payload?: object) => f.app.inject({ method, url, ...(payload ? { payload } : {}) });

async function newAgent(): Promise<string> {
  const res = await inject('POST', '/api/v1/agents', { name: 'Doomed' });
  expect(res.statusCode).toBe(201);
  return res.json().id;
}

async function newConversation(agentId: string): Promise<string> {
  const res = await inject('POST', `/api/v1/agents/${agentId}/conversations`, {});
  expect(res.statusCode).toBe(201);
  return res.json().id;
}

const waitFor = async (done: () => boolean): Promise<void> => {
  for (let i = 0; i < 500 && !done(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(done()).toBe(true);
};

/** Every state key of this agent still in Redis: its own keys, and any conversation whose JSON names it, with its messages. */
async function leftovers(agentId: string, conversationIds: Iterable<string>): Promise<string[]> {
  const p = 'state:ai-agents:';
  const candidates = new Set([`${p}agent:${agentId}`, `${p}agent:${agentId}:conversations`, `${p}memory:${agentId}`]);
  for (const c of conversationIds) candidates.add(`${p}conversation:${c}`).add(`${p}conversation:${c}:messages`);
  for (const key of (await scanKeys(f.raw, `${p}conversation:*`)).filter((k) => !k.endsWith(':messages'))) {
    const json = await f.raw.get(key);
    if (json && JSON.parse(json).agentId === agentId) candidates.add(key).add(`${key}:messages`);
  }
  const left: string[] = [];
  for (const key of candidates) if ((await f.raw.exists(key)) === 1) left.push(key);
  return left.sort();
}

describe('deleting an agent leaves nothing behind, whatever runs beside it', () => {
  it('a message in flight during the delete does not bring back the memory or the history (404)', async () => {
    const agentId = await newAgent();
    const conversationId = await newConversation(agentId);
    const release = f.proxy.hold();
    const calls = f.proxy.calls.length;
    const message = inject('POST', `/api/v1/conversations/${conversationId}/messages`, { content: 'What is AOF?' });
    try {
      // The user message is stored and the context call is waiting in the proxy: now the agent goes.
      await waitFor(() => f.proxy.calls.length > calls);
      expect((await inject('DELETE', `/api/v1/agents/${agentId}`)).statusCode).toBe(204);
    } finally {
      release();
    }
    const res = await message;
    expect(await leftovers(agentId, [conversationId])).toEqual([]);
    expect(res.statusCode, res.body).toBe(404);
  });

  it('conversations and messages started while the agent is deleted do not survive it', async () => {
    const rounds = 5;
    const survivors: string[] = [];
    let created = 0;
    for (let round = 0; round < rounds; round++) {
      const agentId = await newAgent();
      const existing = [await newConversation(agentId), await newConversation(agentId)];
      const send = (i: number) => inject('POST', `/api/v1/conversations/${existing[i % 2]}/messages`, { content: `Which eviction policy, question ${i}?` });
      const start = (i: number) => (i % 3 === 0 ? send(i) : inject('POST', `/api/v1/agents/${agentId}/conversations`, {}));
      // 120 requests started a turn of the event loop apart, the delete among them: some finish before it,
      // some are half done when it runs, some start after it.
      const pending: Array<ReturnType<typeof inject>> = [];
      let del: ReturnType<typeof inject> | undefined;
      for (let i = 0; i < 120; i++) {
        if (i === 60) del = inject('DELETE', `/api/v1/agents/${agentId}`);
        pending.push(start(i));
        await new Promise((r) => setImmediate(r));
      }
      const answers = await Promise.all(pending);
      expect((await del!).statusCode).toBe(204);

      const ids = new Set(existing);
      for (const res of answers) {
        expect([201, 404]).toContain(res.statusCode);
        if (res.statusCode === 201 && res.json().agentId === agentId) ids.add(res.json().id);
      }
      created += ids.size;
      survivors.push(...(await leftovers(agentId, ids)));
      expect((await inject('GET', `/api/v1/agents/${agentId}`)).statusCode).toBe(404);
    }
    expect(created).toBeGreaterThan(rounds * 2);
    expect(survivors).toEqual([]);
  });

  it('deleting all of an agent\'s conversations while messages arrive leaves no history behind', async () => {
    const agentId = await newAgent();
    const conversations = await Promise.all(Array.from({ length: 10 }, () => newConversation(agentId)));
    const sends = conversations.flatMap((c) => [1, 2, 3].map((n) => inject('POST', `/api/v1/conversations/${c}/messages`, { content: `AOF question ${n}` })));
    const del = await inject('DELETE', `/api/v1/agents/${agentId}/conversations`);
    expect(del.statusCode).toBe(200);
    for (const res of await Promise.all(sends)) expect([201, 404]).toContain(res.statusCode);
    const left = (await leftovers(agentId, conversations)).filter((k) => k.includes(':conversation:'));
    expect(left).toEqual([]);
    expect((await inject('GET', `/api/v1/agents/${agentId}`)).statusCode).toBe(200);
  });
});
