/**
 * The OpenAPI documents the three running services serve, used as a client would: linted by Redocly's
 * recommended ruleset and validated by swagger-parser, turned into TypeScript by openapi-typescript, and
 * the main flows driven through openapi-fetch clients typed by them (flows.ts, type-checked here against
 * the freshly generated types).
 */
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import openapiTS, { astToString } from 'openapi-typescript';
import { createConfig, lintFromString } from '@redocly/openapi-core';
import SwaggerParser from '@apidevtools/swagger-parser';
import { SERVICES, startStack, type ServiceName, type Stack } from './stack.js';
import { operationsOf } from './openapi-walk.js';
import type { Seen } from './typed-clients/recorder.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- documents are read as plain JSON */
type Doc = Record<string, any>;

const E2E_DIR = fileURLToPath(new URL('../', import.meta.url));
const GENERATED = fileURLToPath(new URL('../generated/', import.meta.url));
/**
 * Imported by a name tsc does not follow: flows.ts is typed by the generated clients, which exist only once
 * the services ran, so this package's typecheck leaves it to the test below.
 */
const FLOWS_MODULE = './typed-clients/flows.js';
type Flow = (...args: any[]) => any;
let flows: Record<string, Flow>;
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head', 'trace'];

/**
 * Warnings accepted, with the reason: the project declares no license, and an operation that takes no
 * input (no parameter, no body) has no client error to document.
 */
function acceptedWarning(doc: Doc, ruleId: string, pointer: string): boolean {
  if (ruleId === 'info-license') return true;
  if (ruleId === 'operation-4xx-response') {
    const op = resolvePointer(doc, pointer);
    return !op?.requestBody && !(op?.parameters ?? []).length;
  }
  return false;
}

function resolvePointer(doc: Doc, pointer: string): Doc | undefined {
  let node: any = doc;
  for (const raw of pointer.replace(/^#\/?/, '').split('/').filter(Boolean)) {
    node = node?.[raw.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return node;
}

function operations(doc: Doc): Array<{ path: string; method: string; op: Doc }> {
  return Object.entries<Doc>(doc.paths ?? {}).flatMap(([path, item]) =>
    Object.entries<Doc>(item)
      .filter(([method]) => METHODS.includes(method))
      .map(([method, op]) => ({ path, method, op })),
  );
}

let stack: Stack;
/** The typed clients (opaque here) and every answer they got. */
let clients: unknown;
const seen: Seen[] = [];
const docs = {} as Record<ServiceName, Doc>;
const state = { agentId: '', conversationId: '', fileHash: '' };

beforeAll(async () => {
  stack = await startStack();
  for (const name of SERVICES) {
    const res = await fetch(`${stack.byName[name].url}/docs/json`, { signal: AbortSignal.timeout(10_000) });
    expect(res.status).toBe(200);
    docs[name] = (await res.json()) as Doc;
  }
  flows = (await import(FLOWS_MODULE)) as Record<string, Flow>;
  clients = flows.typedClients!({ worker: stack.worker.url, proxy: stack.proxy.url, agents: stack.agents.url }, seen, stack.user.key);
});

afterAll(async () => {
  await stack?.stop();
});

describe('the OpenAPI documents', () => {
  it("pass Redocly's recommended ruleset with no error", async () => {
    const config = await createConfig({ extends: ['recommended'] });
    const unexpected: string[] = [];
    for (const name of SERVICES) {
      const problems = await lintFromString({ source: JSON.stringify(docs[name]), absoluteRef: `${name}.json`, config });
      for (const p of problems) {
        const pointer = p.location[0]?.pointer ?? '';
        if (p.severity === 'error' || !acceptedWarning(docs[name], p.ruleId, pointer)) unexpected.push(`${name} ${p.severity} ${p.ruleId}: ${p.message} at ${pointer}`);
      }
    }
    expect(unexpected).toEqual([]);
  });

  it.each(SERVICES)('%s: swagger-parser validates it', async (name) => {
    await expect(SwaggerParser.validate(structuredClone(docs[name]) as never)).resolves.toBeDefined();
  });

  it.each(SERVICES)('%s: has a server, and a unique operationId on every operation', (name) => {
    const doc = docs[name];
    expect(doc.servers?.length).toBeGreaterThan(0);
    const ids = operations(doc).map(({ path, method, op }) => op.operationId ?? `(none on ${method} ${path})`);
    expect(ids.filter((id) => !/^[a-z][A-Za-z0-9]*$/.test(id))).toEqual([]);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it.each(SERVICES)('%s: every operation but the open ones declares the bearer scheme and its scope, and refuses a call without a credential', async (name) => {
    const doc = docs[name];
    const scheme = doc.components?.securitySchemes?.bearerAuth;
    expect(scheme).toMatchObject({ type: 'http', scheme: 'bearer' });
    const open = new Set(['/health', '/ready', '/metrics', '/api/v1/auth/login']);
    const admin = operationsOf(name, '', doc).filter((o) => o.admin);
    expect(admin.length).toBeGreaterThanOrEqual(5);
    for (const { path, method, op } of operations(doc)) {
      const declared = (op.security ?? doc.security ?? []).some((r: Doc) => 'bearerAuth' in r);
      expect(declared, `${method} ${path}`).toBe(!open.has(path));
      if (!declared) continue;
      expect(['read', 'write', 'admin'], `${method} ${path} x-scope`).toContain(op['x-scope']);
      // Auth runs before validation and the handler: nothing is sent that could change anything.
      const url = stack.byName[name].url + path.replace(/\{[^}]+\}/g, 'x');
      const res = await fetch(url, { method: method.toUpperCase(), signal: AbortSignal.timeout(10_000) });
      expect(res.status, `${method} ${path} without a credential`).toBe(401);
    }
  });
});

describe('typed clients generated from the documents', () => {
  it('openapi-typescript turns each document into types that flows.ts type-checks against', async () => {
    mkdirSync(GENERATED, { recursive: true });
    for (const name of SERVICES) {
      const ast = await openapiTS(structuredClone(docs[name]) as never);
      writeFileSync(`${GENERATED}${name}.ts`, astToString(ast));
    }
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    const run = promisify(execFile)(process.execPath, [tsc, '-p', 'tsconfig.typed-clients.json'], { cwd: E2E_DIR });
    await expect(run.catch((err: { stdout?: string }) => Promise.reject(new Error(err.stdout ?? String(err))))).resolves.toBeDefined();
  }, 120_000);

  it('retrieval-proxy: ingest, list, get, search (miss then hit) and context', async () => {
    await flows.ingestSearchAndContext!(clients);
  });

  it('ai-agents: an agent, a conversation, a message answered with a citation, history and memory', async () => {
    await flows.agentConversationAndMessage!(clients, state);
  });

  it('multimodal-worker: embeddings (float and base64), models and text processing', async () => {
    await flows.embeddingsModelsAndProcessing!(clients, state);
  });

  it('multimodal-worker: one model through each path the document gives for it', async () => {
    const unusable = await flows.modelById!(clients, docs['multimodal-worker'] as never, 'local-hash-384');
    expect(unusable).toEqual([]);
  });

  it('every service: cache stats, and the admin operations with the bearer token', async () => {
    await flows.cacheStatsAndAdmin!(clients, stack.token, state);
  });

  it('x-cache is declared on the answers of exactly the operations that sent it', () => {
    const byService = { worker: 'multimodal-worker', proxy: 'retrieval-proxy', agents: 'ai-agents' } as const;
    const mismatches: string[] = [];
    const driven = new Set(seen.map((s) => `${s.service} ${s.method} ${s.path}`));
    for (const s of seen) {
      const op = docs[byService[s.service]].paths?.[s.path]?.[s.method.toLowerCase()];
      const declared = op?.responses?.[String(s.status)]?.headers?.['x-cache'];
      if (s.xCache !== null && !declared) mismatches.push(`${s.service} ${s.method} ${s.path} ${s.status} sent x-cache: ${s.xCache} but does not declare it`);
      if (s.xCache === null && declared) mismatches.push(`${s.service} ${s.method} ${s.path} ${s.status} declares x-cache but sent none`);
      if (s.xCache !== null && declared && !declared.schema?.enum?.includes(s.xCache)) mismatches.push(`${s.service} ${s.method} ${s.path} sent x-cache: ${s.xCache}, not in ${JSON.stringify(declared.schema)}`);
    }
    expect(mismatches).toEqual([]);
    // The flows reached every operation that declares the header, except the multipart upload.
    for (const [short, name] of Object.entries(byService)) {
      for (const { path, method, op } of operations(docs[name])) {
        if (!op.responses?.['200']?.headers?.['x-cache'] || path === '/api/v1/process/file') continue;
        expect(driven.has(`${short} ${method.toUpperCase()} ${path}`), `${name} ${method} ${path} declares x-cache but no flow called it`).toBe(true);
      }
    }
  });

  it('deletes what the flows made', async () => {
    await flows.deleteWhatWasMade!(clients, state);
  });
});
