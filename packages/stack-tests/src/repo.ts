import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

/** The monorepo root (this file is packages/stack-tests/{src,dist}/repo.*). */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

export type ServiceName = 'multimodal-worker' | 'retrieval-proxy' | 'ai-agents';

export interface ServiceSpec {
  name: ServiceName;
  port: number;
  db: number;
  dbVar: string;
  /** The service this one calls, and the variable holding its URL. */
  peer?: ServiceName;
  peerVar?: string;
}

export const SERVICES: readonly ServiceSpec[] = [
  { name: 'multimodal-worker', port: 8001, db: 0, dbVar: 'REDIS_DB_MULTIMODAL_WORKER' },
  { name: 'retrieval-proxy', port: 8002, db: 1, dbVar: 'REDIS_DB_RETRIEVAL_PROXY', peer: 'multimodal-worker', peerVar: 'MULTIMODAL_WORKER_URL' },
  { name: 'ai-agents', port: 8003, db: 2, dbVar: 'REDIS_DB_AI_AGENTS', peer: 'retrieval-proxy', peerVar: 'RETRIEVAL_PROXY_URL' },
];

export function repoPath(...parts: string[]): string {
  return join(repoRoot, ...parts);
}

export function readRepoFile(...parts: string[]): string {
  return readFileSync(repoPath(...parts), 'utf8');
}

export function repoFileExists(...parts: string[]): boolean {
  return existsSync(repoPath(...parts));
}

/** docker-compose.yml as compose sees it: YAML merge keys (`<<: *anchor`) resolved. */
export function loadCompose(): ComposeFile {
  return parse(readRepoFile('docker-compose.yml'), { merge: true }) as ComposeFile;
}

export interface ComposeService {
  image?: string;
  build?: { context?: string; dockerfile?: string } | string;
  command?: string[] | string;
  entrypoint?: string[] | string;
  environment?: Record<string, string | number | boolean | null> | string[];
  ports?: Array<string | { host_ip?: string; published?: string | number; target?: number }>;
  healthcheck?: { test?: string[] | string; interval?: string; disable?: boolean };
  depends_on?: Record<string, { condition?: string }> | string[];
  volumes?: Array<string | { type?: string; source?: string; target?: string }>;
  user?: string;
}

export interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

/** A compose service's environment as a map (list form `KEY=value` accepted too). */
export function environmentOf(svc: ComposeService): Record<string, string> {
  const env = svc.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(env.map((line) => {
      const i = line.indexOf('=');
      return i < 0 ? [line, ''] : [line.slice(0, i), line.slice(i + 1)];
    }));
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? '' : String(v)]));
}

/** Variables a text interpolates as ${NAME...} (compose's `$$` escapes excluded). */
export function interpolatedVars(text: string): Set<string> {
  const out = new Set<string>();
  for (const m of text.matchAll(/(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)/g)) out.add(m[1] as string);
  return out;
}

/** Property names of the TypeBox schema(s) in a config.ts: `NAME: Type.…`. */
export function schemaVars(source: string): Set<string> {
  const out = new Set<string>();
  for (const m of source.matchAll(/^\s*([A-Z][A-Z0-9_]+)\s*:\s*Type\./gm)) out.add(m[1] as string);
  return out;
}

/** Names .env.example lists, as `NAME=...` or commented out as `# NAME=...`. */
export function envExampleVars(text: string): Map<string, { line: number; active: boolean; value: string }> {
  const out = new Map<string, { line: number; active: boolean; value: string }>();
  text.split('\n').forEach((raw, i) => {
    const m = /^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$/.exec(raw.trim());
    if (m) out.set(m[2] as string, { line: i, active: !m[1], value: m[3] as string });
  });
  return out;
}

/** A Dockerfile's instructions, continuation lines joined, comments dropped. */
export function dockerInstructions(text: string): Array<{ op: string; args: string }> {
  const joined = text.replace(/\\\r?\n/g, ' ');
  const out: Array<{ op: string; args: string }> = [];
  for (const raw of joined.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^([A-Za-z]+)\s+(.*)$/.exec(line);
    if (m) out.push({ op: (m[1] as string).toUpperCase(), args: (m[2] as string).trim() });
  }
  return out;
}
