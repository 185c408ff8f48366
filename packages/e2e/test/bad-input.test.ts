import { appendFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { scanKeys } from '@aicache/test-redis';
import { call, startStack, type ServiceName, type Stack } from './stack.js';
import { multipart, operationsOf, Sender, summarize, variantsFor, type Operation, type Outcome, type SeedIds, type Variant } from './openapi-walk.js';

const FINDINGS_FILE = '/tmp/e2e-findings.md';
const SEED_DOC = 'e2e-seed-doc';
const SEED_QUERY = 'seeded search about basalt columns';

type Kind = 'server error or hang' | 'invalid request accepted by a route that changes data' | 'invalid request accepted by a read';

interface Finding {
  kind?: Kind;
  service: string;
  method: string;
  url: string;
  label: string;
  payload: string;
  expected: string;
  status: Outcome['status'];
  response: string;
}

let stack: Stack;
let sender: Sender;
const dbs: Record<number, Redis> = {};
const seed = { agentId: '', conversationId: '', searchKeys: [] as string[] };
const findings: Finding[] = [];
const shapeFindings: Finding[] = [];
const sent = { reject: 0, no5xx: 0 };
/** Answers that mean the walk did not reach validation (auth, rate limit): must not happen with the token and spread IPs. */
const notReached: string[] = [];
const walkLog: string[] = [];

interface Snapshot {
  keys: Record<number, string[]>;
  state: Record<string, string>;
  api: Record<string, unknown>;
}

async function snapshot(): Promise<Snapshot> {
  const keys: Record<number, string[]> = {};
  const state: Record<string, string> = {};
  for (const i of [0, 1, 2]) {
    keys[i] = (await scanKeys(dbs[i]!)).filter((k) => !k.includes(':__lease:'));
    for (const k of keys[i]!.filter((key) => key.startsWith('state:'))) {
      const dump = await dbs[i]!.dumpBuffer(k);
      state[`${i}/${k}`] = dump ? dump.toString('hex') : '(gone)';
    }
  }
  const get = async (url: string, path: string) => {
    const r = await call(url, 'GET', path);
    return { status: r.status, body: r.json };
  };
  const memory = await call(stack.agents.url, 'GET', `/api/v1/agents/${seed.agentId}/memory`);
  return {
    keys,
    state,
    api: {
      document: await get(stack.proxy.url, `/api/v1/documents/${SEED_DOC}`),
      documents: await get(stack.proxy.url, '/api/v1/documents?limit=100'),
      agent: await get(stack.agents.url, `/api/v1/agents/${seed.agentId}`),
      agents: await get(stack.agents.url, '/api/v1/agents?limit=100'),
      conversation: await get(stack.agents.url, `/api/v1/conversations/${seed.conversationId}`),
      messages: await get(stack.agents.url, `/api/v1/conversations/${seed.conversationId}/messages?limit=200`),
      memory: { status: memory.status, items: memory.json?.items },
    },
  };
}

const ids: SeedIds = {
  seeded(op: Operation, name: string): string {
    if (op.service === 'ai-agents') {
      if (name === 'agentId') return seed.agentId;
      return op.path.startsWith('/api/v1/conversations/') ? seed.conversationId : seed.agentId;
    }
    if (op.service === 'retrieval-proxy') return name === 'pattern' ? 'zz-e2e-nothing-matches' : SEED_DOC;
    if (name === 'fileHash') return 'f'.repeat(64);
    return 'local-hash-384';
  },
  absent(op: Operation, name: string): string {
    if (op.service === 'ai-agents') return randomUUID();
    if (op.service === 'retrieval-proxy') return name === 'pattern' ? 'zz-e2e-nothing-matches' : 'e2e-absent-doc';
    if (name === 'fileHash') return 'e'.repeat(64);
    return 'no-such-model';
  },
};

/** Hand-made uploads for POST /api/v1/process/file (its body is multipart, outside the OpenAPI schema). */
function uploadVariants(op: Operation): Variant[] {
  const v = (label: string, body: { data: Buffer; contentType: string }, expect: Variant['expect'] = 'reject'): Variant => ({
    op,
    label,
    path: {},
    query: '',
    body: { ...body, summary: summarize(body.data.toString('latin1')) },
    expect,
  });
  const json = { data: Buffer.from(JSON.stringify({ text: 'hello' })), contentType: 'application/json' };
  return [
    v('JSON instead of multipart', json),
    v('multipart without a file', multipart([{ name: 'chunkSize', data: '500' }])),
    v('file of invalid UTF-8', multipart([{ name: 'file', filename: 'a.txt', type: 'text/plain', data: Buffer.from([0xff, 0xfe, 0xc3, 0x28]) }])),
    v('file of a binary type', multipart([{ name: 'file', filename: 'a.png', type: 'image/png', data: Buffer.from([0x89, 0x50, 0x4e, 0x47]) }])),
    v('empty file', multipart([{ name: 'file', filename: 'a.txt', type: 'text/plain', data: '' }])),
    v('two files', multipart([{ name: 'file', filename: 'a.txt', type: 'text/plain', data: 'a' }, { name: 'file2', filename: 'b.txt', type: 'text/plain', data: 'b' }])),
    v('chunkSize not a number', multipart([{ name: 'chunkSize', data: 'abc' }, { name: 'file', filename: 'a.txt', type: 'text/plain', data: 'hello' }])),
    v('chunkSize glob', multipart([{ name: 'chunkSize', data: '*' }, { name: 'file', filename: 'a.txt', type: 'text/plain', data: 'hello' }])),
    v('includeEmbeddings not a boolean', multipart([{ name: 'includeEmbeddings', data: 'maybe' }, { name: 'file', filename: 'a.txt', type: 'text/plain', data: 'hello' }])),
    v('unknown field', multipart([{ name: 'zz_unknown', data: '1' }, { name: 'file', filename: 'a.txt', type: 'text/plain', data: 'hello' }])),
    v('field over 1 KB', multipart([{ name: 'model', data: 'm'.repeat(5000) }, { name: 'file', filename: 'a.txt', type: 'text/plain', data: 'hello' }])),
    v('file over 2 MiB', multipart([{ name: 'file', filename: 'big.txt', type: 'text/plain', data: 'a'.repeat(2 * 1024 * 1024 + 10) }])),
    v('truncated multipart', { data: Buffer.from('--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nhel'), contentType: 'multipart/form-data; boundary=xyz' }),
    v('multipart without boundary', { data: Buffer.from('hello'), contentType: 'multipart/form-data' }),
    // Valid uploads with odd names and content: any answer but a 5xx.
    v('filename traversal', multipart([{ name: 'file', filename: '../../etc/passwd.txt', type: 'text/plain', data: 'hello traversal' }]), 'no5xx'),
    v('filename glob and RESP', multipart([{ name: 'file', filename: '*?[a-z]{tag}\r\nFLUSHALL.md', type: 'text/markdown', data: 'hello glob' }]), 'no5xx'),
    v('odd unicode text', multipart([{ name: 'file', filename: 'u.txt', type: 'text/plain', data: '\u202eevil\u200f a\u0000b 😀 e\u0301' }]), 'no5xx'),
  ];
}

function record(v: Variant, out: Outcome): void {
  if (process.env.E2E_WALK_LOG) walkLog.push([v.op.service, v.op.method, v.op.path, v.label, v.expect, out.status, out.text.slice(0, 160).replace(/\s+/g, ' ')].join('\t'));
  if (out.status === 401 || out.status === 429) notReached.push(`${v.op.method} ${v.op.path} (${v.label}) -> ${out.status}`);
  const ok =
    typeof out.status === 'number' &&
    (v.expect === 'reject' ? out.status >= 400 && out.status < 500 : out.status < 500);
  const finding: Finding = {
    service: v.op.service,
    method: v.op.method,
    url: sender.url(v).replace(v.op.baseUrl, '').slice(0, 300),
    label: v.label,
    payload: v.body ? `${v.body.contentType ?? '(no content-type)'} ${v.body.summary}` : '(no body)',
    expected: v.expect === 'reject' ? '4xx' : 'not 5xx',
    status: out.status,
    response: out.text.slice(0, 300),
  };
  if (!ok) {
    const serverSide = typeof out.status !== 'number' || out.status >= 500;
    finding.kind = serverSide
      ? 'server error or hang'
      : v.op.safe
        ? 'invalid request accepted by a read'
        : 'invalid request accepted by a route that changes data';
    if (typeof out.status === 'number' && out.status >= 500) finding.response += logFor(v.op.service as ServiceName, out.text);
    findings.push(finding);
    return;
  }
  if (typeof out.status === 'number' && out.status >= 400) {
    let body: Record<string, unknown> | undefined;
    try {
      body = JSON.parse(out.text) as Record<string, unknown>;
    } catch {
      body = undefined;
    }
    // The worker's OpenAI-compatible routes answer OpenAI's error object, which OpenAI clients read.
    const openAI = v.op.service === 'multimodal-worker' && (v.op.path === '/api/v1/embeddings' || v.op.path.startsWith('/api/v1/models'));
    const inner = body?.error as Record<string, unknown> | undefined;
    const shaped = openAI
      ? typeof inner === 'object' && inner !== null && typeof inner.message === 'string' && typeof inner.type === 'string' && 'param' in inner && 'code' in inner
      : body !== undefined &&
        body.statusCode === out.status &&
        typeof body.code === 'string' &&
        typeof body.error === 'string' &&
        typeof body.message === 'string';
    if (!shaped) {
      const expected = openAI ? "OpenAI's error shape {error: {message, type, param, code}}" : 'the one error shape {statusCode, code, error, message}';
      shapeFindings.push({ ...finding, expected });
    }
  }
}

/** The service's own log line for a 500 ("request id X" in the answer): the error message and the top of the stack. */
function logFor(service: ServiceName, answer: string): string {
  const id = /request id ([\w.:-]+)/.exec(answer)?.[1];
  if (!id) return '';
  const line = stack.byName[service].output.split('\n').find((l) => l.includes(id) && l.includes('"err"'));
  if (!line) return '';
  try {
    const err = (JSON.parse(line) as { err?: { type?: string; message?: string; stack?: string } }).err;
    const at = err?.stack?.split('\n').slice(1, 3).map((l) => l.trim()).join(' | ') ?? '';
    return `\n  service log: ${err?.type}: ${err?.message} ${at}`;
  } catch {
    return `\n  service log: ${line.slice(0, 300)}`;
  }
}

function format(list: Finding[]): string {
  return list
    .map((f) => `- ${f.kind ? `(${f.kind}) ` : ''}[${f.service}] ${f.method} ${f.url}\n  variant: ${f.label}; payload: ${f.payload}\n  expected ${f.expected}, got ${f.status}: ${f.response}`)
    .join('\n');
}

describe('every route of every service, walked from its OpenAPI document with bad input', () => {
  let before: Snapshot;

  beforeAll(async () => {
    stack = await startStack();
    sender = new Sender(stack.token, stack.user.key);
    for (const i of [0, 1, 2]) dbs[i] = stack.db(i);

    const doc = await call(stack.proxy.url, 'POST', '/api/v1/documents', {
      body: { id: SEED_DOC, title: 'Seeded basalt', text: 'Basalt columns form as lava cools and cracks into hexagons. '.repeat(5), metadata: { kind: 'seed', tags: ['a', 'b'] } },
    });
    expect(doc.status, doc.text).toBe(201);
    const search = await call(stack.proxy.url, 'POST', '/api/v1/search', { body: { query: SEED_QUERY } });
    expect(search.status, search.text).toBe(200);
    seed.searchKeys = await scanKeys(dbs[1]!, 'retrieval-proxy:search_results:q:*:seeded-search*');
    expect(seed.searchKeys.length).toBeGreaterThan(0);

    const agent = await call(stack.agents.url, 'POST', '/api/v1/agents', { body: { name: 'Seeded agent', instructions: 'Be brief.' } });
    expect(agent.status, agent.text).toBe(201);
    seed.agentId = agent.json.id;
    const conv = await call(stack.agents.url, 'POST', `/api/v1/agents/${seed.agentId}/conversations`, { body: { title: 'Seeded' } });
    expect(conv.status, conv.text).toBe(201);
    seed.conversationId = conv.json.id;
    const msg = await call(stack.agents.url, 'POST', `/api/v1/conversations/${seed.conversationId}/messages`, { body: { content: 'How do basalt columns form?' } });
    expect(msg.status, msg.text).toBe(201);

    const processed = await call(stack.worker.url, 'POST', '/api/v1/process/text', { body: { text: 'A seeded file for the worker cache.' } });
    expect(processed.status, processed.text).toBe(200);

    before = await snapshot();
  });

  afterAll(async () => {
    await sender?.close();
    await stack?.stop();
  });

  it('sends each operation wrong types, missing fields, oversized, nested, odd and glob input: every answer a 4xx (or, when schema-valid, not a 5xx), none hangs', async () => {
    const services: Array<[ServiceName, string]> = [
      ['multimodal-worker', stack.worker.url],
      ['retrieval-proxy', stack.proxy.url],
      ['ai-agents', stack.agents.url],
    ];
    let operations = 0;
    for (const [name, url] of services) {
      const docRes = await call(url, 'GET', '/docs/json');
      expect(docRes.status, `${name} /docs/json`).toBe(200);
      const ops = operationsOf(name, url, docRes.json);
      expect(ops.length).toBeGreaterThan(3);
      for (const op of ops) {
        const variants = [...variantsFor(op, ids), ...(op.path === '/api/v1/process/file' ? uploadVariants(op) : [])];
        if (variants.length > 0) operations++;
        for (const v of variants) {
          sent[v.expect]++;
          record(v, await sender.send(v));
        }
      }
    }

    const summary = `walked ${operations} operations: ${sent.reject} must-reject and ${sent.no5xx} schema-valid odd requests; ${findings.length} failures, ${shapeFindings.length} 4xx without the error shape`;
    console.log(summary);
    if (findings.length > 0 || shapeFindings.length > 0) {
      appendFileSync(
        FINDINGS_FILE,
        `\n## bad-input walk ${new Date().toISOString()}\n${summary}\n\n### failures\n${format(findings) || '(none)'}\n\n### 4xx without the one error shape\n${format(shapeFindings) || '(none)'}\n`,
      );
    }
    if (process.env.E2E_WALK_LOG) appendFileSync(process.env.E2E_WALK_LOG, `${walkLog.join('\n')}\n`);
    expect(operations).toBeGreaterThan(20);
    expect(notReached, 'requests stopped by auth or the rate limit instead of validation').toEqual([]);
  });

  const ofKind = (kind: Kind) => findings.filter((f) => f.kind === kind);

  it('never answers bad input with a 5xx, a dropped connection or a hang', () => {
    const list = ofKind('server error or hang');
    expect(list, `${list.length} answers (also in ${FINDINGS_FILE}):\n${format(list)}`).toEqual([]);
  });

  it('never accepts a schema-invalid request on a route that changes data', () => {
    const list = ofKind('invalid request accepted by a route that changes data');
    expect(list, `${list.length} answers (also in ${FINDINGS_FILE}):\n${format(list)}`).toEqual([]);
  });

  it('rejects schema-invalid reads with a 4xx instead of guessing (1.5 for an integer, an empty number)', () => {
    const list = ofKind('invalid request accepted by a read');
    expect(list, `${list.length} answers (also in ${FINDINGS_FILE}):\n${format(list)}`).toEqual([]);
  });

  it('answers every 4xx in the one error shape {statusCode, code, error, message} (OpenAI\'s on the worker\'s OpenAI-compatible routes)', () => {
    expect(shapeFindings, format(shapeFindings)).toEqual([]);
  });

  it('shrugs off junk request ids and malformed Authorization headers (no 5xx, junk never echoed, admin stays 401)', async () => {
    const problems: string[] = [];
    const junkIds = ['*?[a-z]{tag}', 'a'.repeat(10_000), 'id with spaces', '../../etc/passwd', 'ünïcödé'];
    const badAuth = ['Bearer', 'Bearer ', `Bearer ${stack.token} extra`, `bearer${stack.token}`, 'Basic YWRtaW46YWRtaW4=', `Bearer ${'x'.repeat(10_000)}`, 'Bearer *', 'Bearer \u00ff\u00fe'];
    for (const svc of [stack.worker, stack.proxy, stack.agents]) {
      for (const id of junkIds) {
        const res = await fetch(`${svc.url}/health`, { headers: { 'x-request-id': id }, signal: AbortSignal.timeout(10_000) }).catch((e: Error) => e);
        if (res instanceof Error) problems.push(`${svc.name} x-request-id ${summarize(id)}: ${res.message}`);
        else if (res.status !== 200 || res.headers.get('x-request-id') === id) {
          problems.push(`${svc.name} x-request-id ${summarize(id)} -> ${res.status}, echoed ${summarize(res.headers.get('x-request-id'))}`);
        }
      }
      for (const auth of badAuth) {
        const res = await fetch(`${svc.url}/api/v1/cache/invalidate`, {
          method: 'POST',
          headers: { authorization: auth, 'content-type': 'application/json' },
          body: JSON.stringify({ category: 'nonexistent', pattern: '*' }),
          signal: AbortSignal.timeout(10_000),
        }).catch((e: Error) => e);
        if (res instanceof Error) problems.push(`${svc.name} authorization ${summarize(auth)}: ${res.message}`);
        else if (res.status !== 401) problems.push(`${svc.name} authorization ${summarize(auth)} -> ${res.status} ${(await res.text()).slice(0, 200)}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('is still up, and the seeded document, agent, conversation, memory and cached search are all still there', async () => {
    for (const svc of [stack.worker, stack.proxy, stack.agents]) {
      expect(svc.running, `${svc.name} process exited:\n${svc.tail()}`).toBe(true);
      const ready = await call(svc.url, 'GET', '/ready');
      expect(ready.status, `${svc.name} /ready: ${ready.text}`).toBe(200);
    }
    const after = await snapshot();
    expect(after.api).toEqual(before.api);
    // State (document index, agents, conversations, memory) is byte-for-byte what it was.
    const changed = [...new Set([...Object.keys(before.state), ...Object.keys(after.state)])]
      .filter((k) => before.state[k] !== after.state[k])
      .map((k) => `${k}: ${k in before.state ? (k in after.state ? 'changed' : 'removed') : 'added'}`);
    expect(changed, 'state keys changed by the walk').toEqual([]);
    // No cache entry of any service was removed (schema-valid odd reads may have added some).
    for (const i of [0, 1, 2]) {
      const lost = before.keys[i]!.filter((k) => !after.keys[i]!.includes(k));
      expect(lost, `keys gone from DB ${i}`).toEqual([]);
    }
    for (const k of seed.searchKeys) expect(await dbs[1]!.exists(k)).toBe(1);
    const again = await call(stack.proxy.url, 'POST', '/api/v1/search', { body: { query: SEED_QUERY } });
    expect(again.status).toBe(200);
    expect(again.headers.get('x-cache')).toBe('hit');
  });
});
