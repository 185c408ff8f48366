// The built services as processes for the benches that load them over HTTP (bench:auth, bench:tracing), and what
// a load round reports.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { freePort } from '@aicache/test-redis';
import { sleep } from './stats.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const CLOCK_TICKS_PER_S = 100;

/** One load round of autocannon against one target. */
export interface Load {
  /** Server process CPU (user + system) per answered request, µs: barely moved by other processes' load. */
  cpuUsPerReq?: number;
  rps: number;
  p50: number;
  p99: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
}

export interface Service {
  url: string;
  proc: ChildProcess;
}

/** user + system CPU of a process so far, µs (from /proc/<pid>/stat; clock ticks of 10 ms). */
export function cpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S) * 1e6;
}

async function ready(url: string, proc: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`exited before /ready:\n${output()}`);
    try {
      if ((await fetch(`${url}/ready`)).status === 200) return;
    } catch {
      // not listening yet
    }
    await sleep(150);
  }
  throw new Error(`not ready within 60 s:\n${output()}`);
}

/**
 * `node services/<name>/dist/server.js` on a free port (NODE_ENV=production unless `env` says otherwise), resolved
 * once its /ready answers 200. `nodeArgs` go before the script (e.g. --cpu-prof).
 */
export async function startService(name: string, env: Record<string, string>, cwd: string, nodeArgs: string[] = []): Promise<Service> {
  const port = await freePort();
  const proc = spawn(process.execPath, [...nodeArgs, `${REPO}services/${name}/dist/server.js`], {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'warn', NODE_ENV: 'production', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout?.setEncoding('utf8').on('data', (d: string) => (out = (out + d).slice(-20_000)));
  proc.stderr?.setEncoding('utf8').on('data', (d: string) => (out = (out + d).slice(-20_000)));
  const url = `http://127.0.0.1:${port}`;
  await ready(url, proc, () => out.slice(-3000));
  return { url, proc };
}

/** One JSON call, with a bearer credential when given; the answer's body parsed when it is JSON. */
export async function call(url: string, method: string, body: unknown, bearer?: string): Promise<{ status: number; json: unknown; cache: string | null }> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  const res = await fetch(url, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  let json: unknown = text;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: keep the text for the error message
  }
  return { status: res.status, json, cache: res.headers.get('x-cache') };
}

/** The body of an answer that must have `status`; else an error naming `what`. */
export async function expect(what: string, p: Promise<{ status: number; json: unknown; cache: string | null }>, status: number): Promise<Record<string, unknown>> {
  const r = await p;
  if (r.status !== status) throw new Error(`${what}: ${r.status} ${JSON.stringify(r.json)}`);
  return r.json as Record<string, unknown>;
}

/** A user of `tenant` with an API key of the write scope, made with the bootstrap admin token on any service. */
export async function apiKeyFor(url: string, adminToken: string, tenant: string): Promise<string> {
  const user = await expect('user create', call(`${url}/api/v1/auth/users`, 'POST', { username: `${tenant}-bench`, password: 'bench-password-0123456789', tenant, role: 'write' }, adminToken), 201);
  const made = await expect('key create', call(`${url}/api/v1/auth/keys`, 'POST', { name: 'bench', scopes: ['write'], userId: String(user.id) }, adminToken), 201);
  return String(made.key);
}
