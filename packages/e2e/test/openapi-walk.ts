import { randomUUID } from 'node:crypto';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { connect } from 'node:net';
import { Agent } from 'undici';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Schema = Record<string, any>;

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

// Bodies are JSON and never coerced by the services; params and query strings arrive as text and are.
const ajvBody = addFormats(new Ajv({ strict: false, useDefaults: true, coerceTypes: false, allErrors: false, validateFormats: true }));
const ajvText = addFormats(new Ajv({ strict: false, useDefaults: true, coerceTypes: true, allErrors: false, validateFormats: true }));
const compiled = new Map<Ajv, Map<string, ValidateFunction>>();

function validator(ajv: Ajv, schema: Schema): ValidateFunction {
  let byText = compiled.get(ajv);
  if (!byText) compiled.set(ajv, (byText = new Map()));
  const key = JSON.stringify(schema);
  let v = byText.get(key);
  if (!v) byText.set(key, (v = ajv.compile(structuredClone(schema))));
  return v;
}

function validBody(schema: Schema, value: unknown): boolean {
  return validator(ajvBody, schema)(structuredClone(value)) as boolean;
}

export interface ParamSpec {
  name: string;
  required: boolean;
  schema: Schema;
}

export interface Operation {
  service: string;
  baseUrl: string;
  method: string;
  /** OpenAPI template, e.g. /api/v1/agents/{id}. */
  path: string;
  pathParams: ParamSpec[];
  queryParams: ParamSpec[];
  bodySchema?: Schema;
  bodyContentTypes: string[];
  /** Admin routes (`x-scope: admin`) get the admin token, the others a user's API key, so a 4xx comes from validation and not auth. */
  admin: boolean;
  /** May receive schema-VALID odd requests (reads, and calls that only fill a cache). */
  safe: boolean;
  /** Deletes or invalidates: only path params that match nothing seeded are ever used. */
  destructive: boolean;
}

export type Expectation = 'reject' | 'no5xx';

export interface Variant {
  op: Operation;
  label: string;
  /** Encoded path segments per param name. */
  path: Record<string, string>;
  /** Raw query string without '?'. */
  query: string;
  body?: { data: string | Buffer; contentType?: string; summary: string };
  expect: Expectation;
  /** Over the body limit: sent so that an early 413 (and the socket closing mid-upload) still counts as the answer. */
  large?: boolean;
}

/** Routes that only read, or only fill a cache: odd but schema-valid requests may reach them. */
const SAFE_POSTS = new Set(['/api/v1/search', '/api/v1/context', '/api/v1/embeddings', '/api/v1/process/text', '/api/v1/process/file', '/api/v1/cache/test']);

export function operationsOf(service: string, baseUrl: string, doc: any): Operation[] {
  const ops: Operation[] = [];
  for (const [path, item] of Object.entries<any>(doc.paths ?? {})) {
    if (path.startsWith('/docs')) continue;
    for (const [method, op] of Object.entries<any>(item)) {
      if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
      const params: any[] = [...(item.parameters ?? []), ...(op.parameters ?? [])];
      const toSpec = (p: any): ParamSpec => ({ name: p.name, required: Boolean(p.required), schema: p.schema ?? {} });
      const content = op.requestBody?.content ?? {};
      const M = method.toUpperCase();
      ops.push({
        service,
        baseUrl,
        method: M,
        path,
        pathParams: params.filter((p) => p.in === 'path').map(toSpec),
        queryParams: params.filter((p) => p.in === 'query').map(toSpec),
        bodySchema: content['application/json']?.schema,
        bodyContentTypes: Object.keys(content),
        admin: op['x-scope'] === 'admin',
        safe: M === 'GET' || (M === 'POST' && SAFE_POSTS.has(path)),
        destructive: M === 'DELETE' || path === '/api/v1/cache/invalidate' || path === '/api/v1/cache/clear',
      });
    }
  }
  return ops;
}

// ---------- sampling valid values ----------

const NAMED: Record<string, unknown> = {
  query: 'sourdough starter',
  content: 'hello there',
  text: 'hello world, a short text',
  title: 'a title',
  name: 'a name',
  input: 'hello',
  category: 'search_results',
};

const STRING_CANDIDATES = ['abc', 'local-hash-384', '0'.repeat(64), 'a', 'abc-1', '1', 'x'.repeat(10)];

function first(schema: Schema): Schema {
  return schema.anyOf?.[0] ?? schema.oneOf?.[0] ?? schema;
}

export function sample(schema: Schema, name = ''): unknown {
  if (schema.const !== undefined) return schema.const;
  if (Array.isArray(schema.enum)) return schema.enum[0];
  if (schema.default !== undefined) return schema.default;
  if (schema.anyOf || schema.oneOf) return sample(first(schema), name);
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type) {
    case 'string': {
      if (schema.format === 'uuid') return randomUUID();
      const cands = [NAMED[name], ...STRING_CANDIDATES].filter((c): c is string => typeof c === 'string');
      const ok = cands.find((c) => validBody(schema, c));
      return ok ?? 'a'.repeat(Math.max(1, schema.minLength ?? 1));
    }
    case 'integer':
    case 'number':
      return schema.minimum ?? (schema.maximum !== undefined ? Math.min(1, schema.maximum) : 1);
    case 'boolean':
      return false;
    case 'array': {
      const n = Math.max(1, schema.minItems ?? 0);
      return Array.from({ length: n }, () => sample(schema.items ?? {}, name));
    }
    case 'object':
    default: {
      if (type !== 'object' && !schema.properties) return 'x';
      const out: Record<string, unknown> = {};
      for (const req of schema.required ?? []) out[req] = sample(schema.properties?.[req] ?? {}, req);
      return out;
    }
  }
}

// ---------- bad values ----------

export const ODD_STRINGS: Record<string, string> = {
  'lone surrogate': '\ud800',
  'lone low surrogate': 'a\udfffb',
  'RTL marks': '\u202eevil\u200f\u200e',
  NUL: 'a\u0000b',
  emoji: '😀👩‍👩‍👧‍👦🏳️‍🌈',
  'zero width + combining': 'e\u0301\u200b\u200d\ufeff',
  'BOM + replacement': '\ufeff\ufffd',
  'C1 control': '\u0085\u009b',
};

export const GLOB_STRINGS: Record<string, string> = {
  'glob *': '*',
  'glob ?': '?',
  'glob class': '[a-z]',
  'RESP injection': '\r\nFLUSHALL\r\n',
  'hash tag': '{tag}',
  traversal: '../../etc/passwd',
  colon: ':',
  'key-ish glob': 'a:b:*',
  'backslash glob': '\\*\\?',
};

function wrongTypes(schema: Schema): Array<[string, unknown]> {
  const types = new Set<string>();
  const collect = (s: Schema) => {
    if (s.anyOf || s.oneOf) for (const b of s.anyOf ?? s.oneOf) collect(b);
    else if (Array.isArray(s.type)) s.type.forEach((t: string) => types.add(t));
    else if (s.type) types.add(s.type);
  };
  collect(schema);
  const out: Array<[string, unknown]> = [];
  if (types.has('string')) out.push(['string→number', 12345], ['string→boolean', true]);
  if (types.has('integer') || types.has('number')) out.push(['number→string', '12'], ['number→array', [1]]);
  if (types.has('boolean')) out.push(['boolean→string', 'true'], ['boolean→number', 1]);
  if (types.has('array')) out.push(['array→object', { 0: 'a' }], ['array→string', 'a']);
  if (types.has('object')) out.push(['object→array', []], ['object→string', 'x']);
  out.push(['null', null]);
  if (types.size === 0) out.push(['→function-ish', { $ref: '#/x' }]);
  return out;
}

function bounds(schema: Schema): Array<[string, unknown]> {
  const out: Array<[string, unknown]> = [];
  const visit = (s: Schema) => {
    if (s.anyOf || s.oneOf) return (s.anyOf ?? s.oneOf).forEach(visit);
    if (typeof s.maxLength === 'number') out.push([`string over maxLength ${s.maxLength}`, 'x'.repeat(s.maxLength + 1)]);
    if (typeof s.minLength === 'number' && s.minLength > 0) out.push([`string under minLength ${s.minLength}`, '']);
    if (s.pattern) out.push(['pattern mismatch', '\u0001 does not match \u0002']);
    if (s.format === 'uuid') out.push(['not a uuid', 'not-a-uuid'], ['uuid + extra', `${randomUUID()}0`]);
    if (typeof s.maximum === 'number') out.push([`over maximum ${s.maximum}`, s.maximum + 1]);
    if (typeof s.minimum === 'number') out.push([`under minimum ${s.minimum}`, s.minimum - 1]);
    if (s.type === 'integer') out.push(['fraction for integer', 1.5], ['huge integer', 1e308]);
    if (s.type === 'number' || s.type === 'integer') out.push(['-0 / 1e400 as text', '1e400']);
    if (Array.isArray(s.enum)) out.push(['not in enum', '__not_in_enum__']);
    if (typeof s.maxItems === 'number') {
      const item = sample(s.items ?? {});
      out.push([`array over maxItems ${s.maxItems}`, Array.from({ length: s.maxItems + 1 }, () => item)]);
    }
    if (typeof s.minItems === 'number' && s.minItems > 0) out.push([`array under minItems ${s.minItems}`, []]);
    if (typeof s.maxProperties === 'number') {
      out.push([`object over maxProperties ${s.maxProperties}`, Object.fromEntries(Array.from({ length: s.maxProperties + 1 }, (_, i) => [`k${i}`, 'v']))]);
    }
  };
  visit(schema);
  return out;
}

export function deepObject(levels: number): Record<string, unknown> {
  let v: Record<string, unknown> = { leaf: 'x' };
  for (let i = 0; i < levels; i++) v = { a: v };
  return v;
}

function hasType(schema: Schema, t: string): boolean {
  if (schema.anyOf || schema.oneOf) return (schema.anyOf ?? schema.oneOf).some((b: Schema) => hasType(b, t));
  return schema.type === t || (Array.isArray(schema.type) && schema.type.includes(t));
}

function truncate(s: string, n = 120): string {
  const esc = JSON.stringify(s);
  return esc.length > n ? `${esc.slice(0, n)}…(${s.length} chars)` : esc;
}

export function summarize(value: unknown): string {
  if (typeof value === 'string') return truncate(value);
  try {
    return truncate(JSON.stringify(value) ?? String(value));
  } catch {
    return String(value);
  }
}

// ---------- path segments ----------

interface Segment {
  label: string;
  raw: string;
}

const BAD_SEGMENTS: Segment[] = [
  { label: 'space', raw: '%20' },
  { label: 'dot', raw: '%2E' },
  { label: '10 KB', raw: 'a'.repeat(10 * 1024) },
  { label: 'invalid uuid', raw: 'not-a-uuid' },
  { label: 'uuid + extra char', raw: `${randomUUID()}0` },
  { label: 'NUL', raw: '%00' },
  { label: 'lone surrogate (WTF-8)', raw: '%ED%A0%80' },
  { label: 'invalid UTF-8', raw: '%FF%FE' },
  { label: 'broken percent', raw: '%E0%A4%A' },
  { label: 'RTL', raw: encodeURIComponent('\u202eabc\u200f') },
  { label: 'emoji', raw: encodeURIComponent('😀') },
  { label: 'raw glob *', raw: '*' },
  { label: 'encoded ?', raw: '%3F' },
  { label: 'raw class', raw: '[a-z]' },
  { label: 'encoded class', raw: encodeURIComponent('[a-z]') },
  { label: 'RESP injection', raw: encodeURIComponent('\r\nFLUSHALL\r\n') },
  { label: 'hash tag', raw: '%7Btag%7D' },
  { label: 'encoded traversal', raw: encodeURIComponent('../../etc/passwd') },
  { label: 'raw traversal', raw: '../../etc/passwd' },
  { label: 'colon', raw: ':' },
  { label: 'key-ish glob', raw: 'a:b:*' },
  { label: 'double-encoded', raw: '%252A' },
];

function decodeSegment(raw: string): string | null {
  try {
    return decodeURIComponent(raw);
  } catch {
    return null;
  }
}

function validParam(spec: ParamSpec, decoded: string | null): boolean {
  if (decoded === null) return false;
  // A raw '/' changes the route itself: whatever answers, it is not this operation with this value.
  if (decoded.includes('/') && !spec.name.includes('*')) return false;
  return validator(ajvText, { type: 'object', properties: { v: spec.schema }, required: ['v'] })({ v: decoded }) as boolean;
}

function validQuery(op: Operation, query: string): boolean {
  const params = new URLSearchParams(query);
  const obj: Record<string, unknown> = {};
  for (const key of new Set(params.keys())) {
    const all = params.getAll(key);
    obj[key] = all.length > 1 ? all : all[0];
  }
  const schema = {
    type: 'object',
    properties: Object.fromEntries(op.queryParams.map((p) => [p.name, p.schema])),
    required: op.queryParams.filter((p) => p.required && p.schema.default === undefined).map((p) => p.name),
  };
  for (const p of op.queryParams) {
    const v = obj[p.name];
    if (Array.isArray(v) && !hasType(p.schema, 'array')) return false;
    // NUL and broken UTF-8 in a query value: Fastify's parser keeps them as text; judged by the schema below.
  }
  return validator(ajvText, schema)(obj) as boolean;
}

// ---------- variants ----------

export interface SeedIds {
  /** A value for a path param that names seeded data (used for non-destructive POSTs only). */
  seeded(op: Operation, name: string): string;
  /** A valid value that names nothing (used for destructive routes). */
  absent(op: Operation, name: string): string;
}

export function variantsFor(op: Operation, ids: SeedIds): Variant[] {
  const out: Variant[] = [];
  const goodPath: Record<string, string> = {};
  for (const p of op.pathParams) goodPath[p.name] = encodeURIComponent(op.destructive ? ids.absent(op, p.name) : ids.seeded(op, p.name));
  const goodPathValid = op.pathParams.every((p) => validParam(p, decodeSegment(goodPath[p.name]!)));
  const baseQuery = '';
  const baseBody = op.bodySchema ? sample(op.bodySchema) : undefined;
  const bodyRequired = op.bodySchema !== undefined && (op.bodySchema.required?.length ?? 0) > 0;

  const json = (value: unknown, summary?: string) => ({ data: JSON.stringify(value), contentType: 'application/json', summary: summary ?? summarize(value) });
  const baseBodyPart = baseBody !== undefined ? json(baseBody) : undefined;

  const push = (label: string, parts: { path?: Record<string, string>; query?: string; body?: Variant['body'] | null }, valid: boolean) => {
    const expect: Expectation = valid ? 'no5xx' : 'reject';
    if (valid && !op.safe) return; // never a valid request to a route that changes data
    out.push({
      op,
      label,
      path: parts.path ?? goodPath,
      query: parts.query ?? baseQuery,
      ...(parts.body === null ? {} : parts.body ? { body: parts.body } : baseBodyPart ? { body: baseBodyPart } : {}),
      expect,
    });
  };
  const bodyValid = (v: unknown) => (op.bodySchema ? validBody(op.bodySchema, v) : true);
  const restValid = goodPathValid && validQuery(op, baseQuery);

  // Path params.
  for (const p of op.pathParams) {
    for (const seg of BAD_SEGMENTS) {
      const path = { ...goodPath, [p.name]: seg.raw };
      const valid = validParam(p, decodeSegment(seg.raw)) && (baseBody === undefined || bodyValid(baseBody));
      push(`path ${p.name}: ${seg.label}`, { path }, valid);
    }
  }

  // Query params.
  const queryValues: Array<[string, string]> = [
    ['not a number', 'abc'],
    ['fraction', '1.5'],
    ['negative', '-1'],
    ['huge', '1e400'],
    ['empty', ''],
    ['NUL', '%00'],
    ['lone surrogate', '%ED%A0%80'],
    ['glob', '*'],
    ['RESP injection', encodeURIComponent('\r\nFLUSHALL\r\n')],
    ['10 KB', 'a'.repeat(10 * 1024)],
  ];
  for (const p of op.queryParams) {
    const extra: Array<[string, string]> = [];
    if (typeof p.schema.maximum === 'number') extra.push([`over maximum ${p.schema.maximum}`, String(p.schema.maximum + 1)]);
    if (typeof p.schema.minimum === 'number') extra.push([`under minimum ${p.schema.minimum}`, String(p.schema.minimum - 1)]);
    if (typeof p.schema.maxLength === 'number') extra.push([`over maxLength ${p.schema.maxLength}`, 'x'.repeat(p.schema.maxLength + 1)]);
    for (const [label, v] of [...queryValues, ...extra]) {
      const query = `${encodeURIComponent(p.name)}=${v}`;
      push(`query ${p.name}: ${label}`, { query }, restValid && validQuery(op, query) && (baseBody === undefined || bodyValid(baseBody)));
    }
    const dup = `${p.name}=1&${p.name}=2`;
    push(`query ${p.name}: repeated`, { query: dup }, restValid && validQuery(op, dup) && (baseBody === undefined || bodyValid(baseBody)));
    const brackets = `${p.name}[a]=1`;
    push(`query ${p.name}: bracket syntax`, { query: brackets }, (restValid && validQuery(op, brackets) && (baseBody === undefined || bodyValid(baseBody))));
  }
  if (op.queryParams.length > 0 || op.method === 'GET') {
    push('query: unknown parameter', { query: 'zz_unknown=1' }, restValid && validQuery(op, 'zz_unknown=1') && (baseBody === undefined || bodyValid(baseBody)));
  }

  // Bodies.
  if (op.bodySchema) {
    const schema = op.bodySchema;
    const bodyVariant = (label: string, value: unknown) => push(`body ${label}`, { body: json(value) }, restValid && bodyValid(value));
    const base = (baseBody ?? {}) as Record<string, unknown>;
    const props: Record<string, Schema> = schema.properties ?? {};

    for (const req of schema.required ?? []) {
      const { [req]: _dropped, ...rest } = base;
      bodyVariant(`missing required '${req}'`, rest);
    }
    bodyVariant('empty object', {});

    const perProperty = (setAt: (v: unknown) => unknown, prefix: string, propSchema: Schema) => {
      for (const [label, v] of wrongTypes(propSchema)) bodyVariant(`${prefix}: ${label}`, setAt(v));
      for (const [label, v] of bounds(propSchema)) bodyVariant(`${prefix}: ${label}`, setAt(v));
      bodyVariant(`${prefix}: 100-level nested object`, setAt(deepObject(100)));
      if (hasType(propSchema, 'string') || (hasType(propSchema, 'array') && !propSchema.items?.properties)) {
        const asItem = !hasType(propSchema, 'string');
        for (const [label, s] of [...Object.entries(ODD_STRINGS), ...Object.entries(GLOB_STRINGS)]) {
          bodyVariant(`${prefix}: ${label}`, setAt(asItem ? [s] : s));
        }
      }
      if (hasType(propSchema, 'object') && !propSchema.properties) {
        // Maps (metadata, filters): odd and glob keys, odd values.
        for (const [label, s] of [...Object.entries(ODD_STRINGS), ...Object.entries(GLOB_STRINGS)]) {
          bodyVariant(`${prefix}: key ${label}`, setAt({ [s]: 'v' }));
          bodyVariant(`${prefix}: value ${label}`, setAt({ k: s }));
        }
        bodyVariant(`${prefix}: value nested object`, setAt({ k: { a: 1 } }));
        bodyVariant(`${prefix}: 100-level nested value`, setAt({ k: deepObject(100) }));
        bodyVariant(`${prefix}: __proto__ key`, setAt(JSON.parse('{"__proto__": {"polluted": true}}')));
      }
    };

    for (const [name, propSchema] of Object.entries(props)) {
      perProperty((v) => ({ ...base, [name]: v }), `'${name}'`, propSchema);
      // One level down (agent settings...).
      const nested = first(propSchema);
      if (nested.properties) {
        const inner = (sample(nested) ?? {}) as Record<string, unknown>;
        for (const [innerName, innerSchema] of Object.entries<Schema>(nested.properties)) {
          perProperty((v) => ({ ...base, [name]: { ...inner, [innerName]: v } }), `'${name}.${innerName}'`, innerSchema);
        }
        if (nested.additionalProperties === false) bodyVariant(`'${name}': unknown property`, { ...base, [name]: { ...inner, zz_unknown: 1 } });
      }
    }
    if (schema.additionalProperties === false) bodyVariant('unknown property', { ...base, zz_unknown: 1 });
    bodyVariant('whole body 100-level nested', deepObject(100));
    bodyVariant('top-level array', [base]);
    bodyVariant('top-level string', 'x');
    bodyVariant('top-level number', 42);
    bodyVariant('top-level null', null);

    // Raw bodies the JSON parser or the content-type check must refuse.
    const raw = (label: string, data: string | Buffer, contentType: string | undefined) =>
      push(`raw ${label}`, { body: { data, ...(contentType ? { contentType } : {}), summary: summarize(typeof data === 'string' ? data : `<${data.length} bytes>`) } }, false);
    const baseText = JSON.stringify(base);
    raw('invalid JSON', '{"query": "abc",', 'application/json');
    raw('JSON with trailing garbage', `${baseText}}}`, 'application/json');
    raw('single quotes', "{'a': 1}", 'application/json');
    raw('empty body with JSON type', '', 'application/json');
    raw('__proto__ pollution', `{"__proto__": {"polluted": true}, ${baseText.slice(1)}`.replace(', }', '}'), 'application/json');
    raw('constructor.prototype pollution', `{"constructor": {"prototype": {"polluted": true}}}`, 'application/json');
    {
      // Invalid UTF-8 is decoded as U+FFFD by the JSON parser: judge the request by what the service will see.
      const badUtf8 = Buffer.concat([Buffer.from('{"query": "'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}')]);
      const seen = JSON.parse(badUtf8.toString('utf8')) as unknown;
      push('raw invalid UTF-8 bytes', { body: { data: badUtf8, contentType: 'application/json', summary: summarize(badUtf8.toString('latin1')) } }, restValid && bodyValid(seen));
    }
    raw('text/plain content type', baseText, 'text/plain');
    raw('xml content type', '<query>abc</query>', 'application/xml');
    raw('form content type', 'query=abc', 'application/x-www-form-urlencoded');
    raw('garbage content type', baseText, 'application/jsonx');
    if (op.safe) {
      // Schema-valid JSON under an odd charset: accepting it is fine, a 5xx is not.
      push('raw JSON with charset=utf-16', { body: { data: baseText, contentType: 'application/json; charset=utf-16', summary: summarize(baseText) } }, restValid);
    }
    raw('10 000-level nested array', `${'['.repeat(10_000)}${']'.repeat(10_000)}`, 'application/json');
    raw('10 000-level nested object', `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`, 'application/json');
    out.push({
      op,
      label: 'raw 5 MB body',
      path: goodPath,
      query: baseQuery,
      body: { data: `{"zz": "${'a'.repeat(5 * 1024 * 1024)}"}`, contentType: 'application/json', summary: '{"zz": "aaaa…"} (5 MB)' },
      expect: 'reject',
      large: true,
    });
    if (bodyRequired || op.safe) push('no body at all', { body: null }, !bodyRequired && restValid && bodyValid({}));
  }

  return out;
}

// ---------- sending ----------

export interface Outcome {
  status: number | 'hang' | 'network-error';
  text: string;
  headers: Record<string, string | string[] | undefined>;
}

/** The admin routes are rate limited per client IP: spread them over loopback addresses (127.0.x.y). */
export class Sender {
  private agents = new Map<string, Agent>();
  private adminCount = 0;

  constructor(
    private readonly token: string,
    /** The API key sent to every route that is not an admin route. */
    private readonly userKey: string,
    private readonly timeoutMs = 10_000,
  ) {}

  private dispatcher(admin: boolean): Agent {
    let addr = '127.0.0.1';
    if (admin) {
      const n = Math.floor(this.adminCount++ / 40);
      addr = `127.0.${Math.floor(n / 250) + 1}.${(n % 250) + 2}`;
    }
    let a = this.agents.get(addr);
    if (!a) {
      a = new Agent({ localAddress: addr, keepAliveTimeout: 1000 });
      this.agents.set(addr, a);
    }
    return a;
  }

  url(v: Variant): string {
    let path = v.op.path;
    for (const [name, value] of Object.entries(v.path)) path = path.replace(`{${name}}`, value);
    return `${v.op.baseUrl}${path}${v.query ? `?${v.query}` : ''}`;
  }

  async send(v: Variant): Promise<Outcome> {
    if (v.large) return this.sendLarge(v);
    const headers: Record<string, string> = {};
    headers.authorization = `Bearer ${v.op.admin ? this.token : this.userKey}`;
    let body: string | Buffer | undefined;
    if (v.body) {
      body = v.body.data;
      if (v.body.contentType) headers['content-type'] = v.body.contentType;
    }
    try {
      // origin + path: the path goes out exactly as built (no dot-segment normalization by a URL parser).
      const res = await this.dispatcher(v.op.admin).request({
        origin: new URL(v.op.baseUrl).origin,
        path: this.url(v).slice(v.op.baseUrl.length),
        method: v.op.method as 'GET',
        headers,
        body,
        signal: AbortSignal.timeout(this.timeoutMs),
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      });
      const text = await res.body.text();
      return { status: res.statusCode, text, headers: res.headers };
    } catch (err) {
      const e = err as Error & { code?: string; cause?: Error };
      const aborted = e.name === 'TimeoutError' || e.name === 'AbortError' || e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT';
      return { status: aborted ? 'hang' : 'network-error', text: `${e.name}: ${e.message}${e.code ? ` (${e.code})` : ''}${e.cause ? ` cause: ${e.cause.message}` : ''}`, headers: {} };
    }
  }

  /**
   * A raw socket, because a service may answer 413 from the content-length alone and close the
   * connection while the client is still writing; HTTP clients then report EPIPE and drop the answer.
   */
  sendLarge(v: Variant): Promise<Outcome> {
    return new Promise((resolve) => {
      const u = new URL(this.url(v));
      const data = Buffer.from(v.body?.data ?? '');
      const head =
        `${v.op.method} ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nContent-Type: ${v.body?.contentType ?? 'application/json'}\r\n` +
        `Content-Length: ${data.length}\r\nAuthorization: Bearer ${v.op.admin ? this.token : this.userKey}\r\nConnection: close\r\n\r\n`;
      let received = Buffer.alloc(0);
      let settled = false;
      const sock = connect(Number(u.port), u.hostname);
      const finish = (fallback?: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        sock.destroy();
        const text = received.toString('utf8');
        const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
        if (m) return resolve({ status: Number(m[1]), text: text.slice(text.indexOf('\r\n\r\n') + 4), headers: {} });
        resolve({ status: fallback === 'hang' ? 'hang' : 'network-error', text: fallback ?? 'connection closed without an answer', headers: {} });
      };
      const timer = setTimeout(() => finish('hang'), this.timeoutMs);
      sock.on('data', (d: Buffer) => {
        received = Buffer.concat([received, d]);
        const text = received.toString('latin1');
        const headEnd = text.indexOf('\r\n\r\n');
        const len = /\r\ncontent-length: *(\d+)/i.exec(text)?.[1];
        if (headEnd >= 0 && !text.startsWith('HTTP/1.1 100') && len !== undefined && received.length >= headEnd + 4 + Number(len)) finish();
      });
      sock.on('close', () => finish());
      sock.on('error', () => setTimeout(() => finish(), 200));
      sock.on('connect', async () => {
        sock.write(head);
        // A service that judges the content-length answers now; writing the body first would race its close (RST).
        await new Promise((r) => setTimeout(r, 1000));
        for (let i = 0; i < data.length && !settled && !sock.destroyed; i += 64 * 1024) {
          if (!sock.write(data.subarray(i, i + 64 * 1024))) await new Promise((r) => sock.once('drain', r).once('close', r));
        }
      });
    });
  }

  async close(): Promise<void> {
    await Promise.all([...this.agents.values()].map((a) => a.close()));
  }
}

/** A multipart/form-data body built by hand (exact bytes, including broken ones). */
export function multipart(parts: Array<{ name: string; filename?: string; type?: string; data: string | Buffer }>, boundary = `e2e${randomUUID().replace(/-/g, '')}`): { data: Buffer; contentType: string } {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const disp = `form-data; name="${p.name}"${p.filename !== undefined ? `; filename="${p.filename}"` : ''}`;
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disp}\r\n${p.type ? `Content-Type: ${p.type}\r\n` : ''}\r\n`));
    chunks.push(Buffer.isBuffer(p.data) ? p.data : Buffer.from(p.data));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { data: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}
