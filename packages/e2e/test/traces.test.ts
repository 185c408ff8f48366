import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startStack, SERVICES, type ServiceName, type Stack } from './stack.js';

// One request to ai-agents traced through the proxy and the worker, exported over OTLP (http/json) to a
// receiver in this file; and with no endpoint set, the SDK is not even loaded.

const REPORT_MODULES = fileURLToPath(new URL('./fixtures/report-otel-modules.cjs', import.meta.url));

interface AnyValue {
  stringValue?: string;
  intValue?: number | string;
  boolValue?: boolean;
  doubleValue?: number;
}
interface KeyValue {
  key: string;
  value: AnyValue;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: KeyValue[];
}
interface ExportRequest {
  resourceSpans?: { resource?: { attributes?: KeyValue[] }; scopeSpans?: { spans?: OtlpSpan[] }[] }[];
}
interface Span extends OtlpSpan {
  service: string;
  attrs: Record<string, string | number | boolean | undefined>;
}

const SPAN_KIND_SERVER = 2;

function plain(v: AnyValue): string | number | boolean | undefined {
  return v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : undefined) ?? v.boolValue ?? v.doubleValue;
}

function attrsOf(list: KeyValue[] | undefined): Record<string, string | number | boolean | undefined> {
  return Object.fromEntries((list ?? []).map((kv) => [kv.key, plain(kv.value)]));
}

const DIMS = 8;

/** A vector from the text's characters, so different texts embed differently. */
function embed(text: string): number[] {
  const v = Array.from({ length: DIMS }, () => 0.01);
  for (let i = 0; i < text.length; i++) v[i % DIMS]! += text.charCodeAt(i) / 1000;
  return v;
}

/**
 * A minimal OTLP/HTTP receiver (JSON export requests on /v1/traces; it keeps the spans) that also
 * plays the providers' OpenAI-compatible API: /v1/embeddings for the worker, /v1/chat/completions for
 * ai-agents, so their provider calls show up in the trace.
 */
class Receiver {
  readonly spans: Span[] = [];
  /** Every path posted to, e.g. /v1/traces. */
  readonly paths = new Set<string>();
  private server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const json = (status: number, answer: unknown): void => void res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
      if (req.url === '/v1/embeddings') {
        const input = (JSON.parse(body) as { input: string[] }).input;
        const data = input.map((text, index) => ({ object: 'embedding', index, embedding: embed(text) }));
        return json(200, { object: 'list', data, model: 'trace-embed', usage: { prompt_tokens: 1, total_tokens: 1 } });
      }
      if (req.url?.startsWith('/v1/models/')) return json(200, { id: 'trace-embed', object: 'model' });
      if (req.url === '/v1/chat/completions') {
        const message = { role: 'assistant', content: 'A starter ferments with wild yeast [1].' };
        return json(200, { id: 'c1', object: 'chat.completion', model: 'trace-llm', choices: [{ index: 0, finish_reason: 'stop', message }] });
      }
      this.paths.add(req.url ?? '');
      if (req.url === '/v1/traces' && (req.headers['content-type'] ?? '').includes('json')) {
        const request = JSON.parse(body) as ExportRequest;
        for (const rs of request.resourceSpans ?? []) {
          const service = String(attrsOf(rs.resource?.attributes)['service.name']);
          for (const ss of rs.scopeSpans ?? []) for (const s of ss.spans ?? []) this.spans.push({ ...s, service, attrs: attrsOf(s.attributes) });
        }
      }
      json(200, {});
    });
  });

  async start(): Promise<string> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function loadedOtelModules(output: string): string[] {
  const line = /otel-modules-loaded: (.*)/.exec(output);
  if (!line) throw new Error(`no module report in the output:\n${output.slice(-2000)}`);
  return JSON.parse(line[1]!) as string[];
}

const DOC = {
  id: 'trace-doc',
  title: 'Sourdough starters',
  text: 'A sourdough starter is a culture of wild yeast and lactic acid bacteria used for fermentation of bread dough.',
};

/** Ingests a document, then asks ai-agents one question; returns the request id of that message. */
async function converse(stack: Stack, requestId: string): Promise<void> {
  const doc = await call(stack.proxy.url, 'POST', '/api/v1/documents', { body: DOC });
  expect(doc.status, doc.text).toBe(201);
  const agent = await call(stack.agents.url, 'POST', '/api/v1/agents', { body: { name: 'Baker', instructions: 'Answer from the documents.' } });
  expect(agent.status, agent.text).toBe(201);
  const conv = await call(stack.agents.url, 'POST', `/api/v1/agents/${agent.json.id}/conversations`, { body: { title: 'Starters' } });
  expect(conv.status, conv.text).toBe(201);
  const msg = await call(stack.agents.url, 'POST', `/api/v1/conversations/${conv.json.id}/messages`, {
    body: { content: 'How does a sourdough starter use wild yeast?' },
    headers: { 'x-request-id': requestId },
  });
  expect(msg.status, msg.text).toBe(201);
}

const withModuleReport = (env: Record<string, string>): Partial<Record<ServiceName, Record<string, string>>> =>
  Object.fromEntries(SERVICES.map((s) => [s, { NODE_OPTIONS: `--require ${REPORT_MODULES}`, ...env }]));

describe('traces with OTEL_EXPORTER_OTLP_ENDPOINT set', () => {
  const receiver = new Receiver();
  let stack: Stack | undefined;
  const requestId = `trace-${Date.now()}`;
  let endpoint = '';

  beforeAll(async () => {
    endpoint = await receiver.start();
    const env = withModuleReport({
      OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '100',
      LOG_LEVEL: 'info',
    });
    env['multimodal-worker'] = { ...env['multimodal-worker'], EMBEDDINGS_BASE_URL: `${endpoint}/v1`, EMBEDDINGS_MODEL: 'trace-embed', EMBEDDINGS_DIMENSIONS: String(DIMS) };
    env['ai-agents'] = { ...env['ai-agents'], LLM_BASE_URL: `${endpoint}/v1`, LLM_MODEL: 'trace-llm' };
    stack = await startStack({ env });
    await converse(stack, requestId);
  });

  afterAll(async () => {
    await stack?.stop();
    await receiver.stop();
  });

  it('makes the message one trace across the three services, each hop a child of the one that called it', async () => {
    const s = stack!;
    const root = await until('the ai-agents span of the message request', () =>
      receiver.spans.find((sp) => sp.service === 'ai-agents' && sp.kind === SPAN_KIND_SERVER && String(sp.attrs['url.path'] ?? sp.attrs['http.target']).endsWith('/messages')),
    );
    const traceOf = (): Span[] => receiver.spans.filter((sp) => sp.traceId === root.traceId);
    // The worker's spans end last; wait until every service has exported its part.
    await until('spans of all three services', () => (SERVICES.every((name) => traceOf().some((sp) => sp.service === name)) ? true : undefined));
    await s.stop(); // SIGTERM: each service exports what it still buffers before it exits
    const spans = traceOf();
    const byId = new Map(spans.map((sp) => [sp.spanId, sp]));

    expect(new Set(spans.map((sp) => sp.service))).toEqual(new Set(SERVICES));
    // Connected: one root (the incoming request to ai-agents), every other span's parent is in the trace.
    const roots = spans.filter((sp) => !sp.parentSpanId);
    expect(roots.map((sp) => sp.spanId)).toEqual([root.spanId]);
    for (const sp of spans) if (sp.parentSpanId) expect(byId.has(sp.parentSpanId), `parent of ${sp.service} ${sp.name}`).toBe(true);

    // The hops: a proxy server span whose parent is an ai-agents span (its undici client call), and a
    // worker server span whose parent is a proxy span.
    const hop = (callee: ServiceName, caller: ServiceName): boolean =>
      spans.some((sp) => sp.service === callee && sp.kind === SPAN_KIND_SERVER && byId.get(sp.parentSpanId ?? '')?.service === caller);
    expect(hop('retrieval-proxy', 'ai-agents')).toBe(true);
    expect(hop('multimodal-worker', 'retrieval-proxy')).toBe(true);

    // Provider calls: undici client spans of the worker (embeddings) and ai-agents (chat completions).
    const provider = (service: ServiceName, path: string): boolean =>
      spans.some((sp) => sp.service === service && String(sp.attrs['url.full']).startsWith(`${endpoint}${path}`));
    expect(provider('multimodal-worker', '/v1/embeddings')).toBe(true);
    expect(provider('ai-agents', '/v1/chat/completions')).toBe(true);

    // Redis commands, in every service (state and cache).
    const redis = spans.filter((sp) => sp.attrs['db.system'] === 'redis' || sp.attrs['db.system.name'] === 'redis');
    expect(new Set(redis.map((sp) => sp.service))).toEqual(new Set(SERVICES));
    // The command only: keys carry query text and state ids, values carry documents.
    const statements = redis.map((sp) => String(sp.attrs['db.query.text'] ?? sp.attrs['db.statement'] ?? ''));
    expect(statements.filter((st) => /sourdough|state:|ai-agents:|retrieval-proxy:|multimodal-worker:/i.test(st))).toEqual([]);

    // Cache outcomes where a cached answer is sent: the proxy's context and the worker's embeddings.
    const outcomes = spans.filter((sp) => sp.attrs['cache.outcome'] !== undefined);
    expect(outcomes.some((sp) => sp.service === 'retrieval-proxy' && ['hit', 'miss'].includes(String(sp.attrs['cache.outcome'])))).toBe(true);
    expect(outcomes.some((sp) => sp.service === 'multimodal-worker')).toBe(true);

    // Logs carry the trace: the ai-agents request log line has both the request id and the trace id.
    const lines = s.agents.output.split('\n').filter((l) => l.includes(requestId));
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.some((l) => l.includes(`"trace_id":"${root.traceId}"`))).toBe(true);

    expect(loadedOtelModules(s.agents.output)).toContain('@opentelemetry/sdk-node');
    // Traces only: metrics stay on /metrics and logs on stdout.
    expect([...receiver.paths]).toEqual(['/v1/traces']);
  });
});

describe('traces with OTEL_EXPORTER_OTLP_ENDPOINT unset', () => {
  let stack: Stack | undefined;

  afterAll(async () => {
    await stack?.stop();
  });

  it('loads no OpenTelemetry SDK module in any service, and logs no trace ids', async () => {
    stack = await startStack({ env: withModuleReport({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', LOG_LEVEL: 'info' }) });
    const requestId = `untraced-${Date.now()}`;
    await converse(stack, requestId);
    await stack.stop();
    for (const name of SERVICES) expect(loadedOtelModules(stack.byName[name].output), name).toEqual([]);
    const lines = stack.agents.output.split('\n').filter((l) => l.includes(requestId));
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.some((l) => l.includes('trace_id'))).toBe(false);
  });
});
