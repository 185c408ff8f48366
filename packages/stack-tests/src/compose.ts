import { spawnSync } from 'node:child_process';
import { repoPath, repoRoot } from './repo.js';
import { run, type RunResult } from './processes.js';

/** How to call Compose: `docker compose` (v2) or `docker-compose` (1.x). */
export interface ComposeCli {
  argv: string[];
  version: string;
}

function firstLine(s: string): string {
  return s.trim().split('\n')[0] ?? '';
}

/**
 * Why no Docker engine can be used here, or undefined when `docker info` answers. The CLI is enough:
 * the tests drive the engine through `docker` and Compose as a user would.
 */
export function dockerUnavailable(): string | undefined {
  const info = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], { encoding: 'utf8', timeout: 20_000 });
  if (info.error) return `the docker CLI cannot run (${info.error.message})`;
  if (info.status !== 0) return `no Docker engine answers (${firstLine(info.stderr) || `docker info exited ${info.status}`})`;
  return undefined;
}

function probe(argv: string[]): ComposeCli | undefined {
  const r = spawnSync(argv[0] as string, [...argv.slice(1), 'version'], { encoding: 'utf8', timeout: 20_000 });
  return !r.error && r.status === 0 ? { argv, version: firstLine(r.stdout) } : undefined;
}

/** Every Compose that runs here: `docker compose` (v2 plugin) and `docker-compose` (1.x, or v2 standalone). */
export function composeClis(): ComposeCli[] {
  return [['docker', 'compose'], ['docker-compose']].map(probe).filter((c): c is ComposeCli => c !== undefined);
}

/**
 * The Compose to test with: STACK_TEST_COMPOSE ("docker compose" or "docker-compose") when set, else
 * `docker compose` when that plugin exists, else `docker-compose`.
 */
export function findCompose(): ComposeCli | undefined {
  const wanted = process.env.STACK_TEST_COMPOSE?.trim();
  return wanted ? probe(wanted.split(/\s+/)) : composeClis()[0];
}

/** The environment Compose and docker run with here: the classic builder, no BuildKit frontend to pull. */
export function dockerEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, DOCKER_BUILDKIT: '0', COMPOSE_DOCKER_CLI_BUILD: '0', ...extra };
}

/** Runs docker; throws with its output when it fails. */
export async function docker(args: string[], opts: { allowFail?: boolean } = {}): Promise<RunResult> {
  const r = await run('docker', args, dockerEnv());
  if (r.code !== 0 && !opts.allowFail) throw new Error(`docker ${args.join(' ')} exited ${r.code}:\n${r.output.slice(-4000)}`);
  return r;
}

/** `docker inspect --format` of one object, trimmed. */
export async function inspect(id: string, format: string): Promise<string> {
  return (await docker(['inspect', '--format', format, id])).output.trim();
}

/**
 * The base images the stack builds on: NODE_IMAGE/REDIS_IMAGE/DEBIAN_IMAGE/POSTGRES_IMAGE from the environment when
 * set, else what infra/docker/build-base-images.sh says (nothing when the public images are here;
 * local stand-ins, built when missing, when they are not).
 */
export async function baseImages(): Promise<Record<string, string>> {
  const names = ['NODE_IMAGE', 'REDIS_IMAGE', 'DEBIAN_IMAGE', 'POSTGRES_IMAGE'];
  const given = Object.fromEntries(names.filter((n) => process.env[n]).map((n) => [n, process.env[n] as string]));
  if (Object.keys(given).length === names.length) return given;
  const r = await run(repoPath('infra', 'docker', 'build-base-images.sh'), [], dockerEnv());
  if (r.code !== 0) throw new Error(`infra/docker/build-base-images.sh exited ${r.code}:\n${r.output.slice(-4000)}`);
  const found: Record<string, string> = {};
  for (const m of r.output.matchAll(/^([A-Z_]+_IMAGE)=(\S+)$/gm)) found[m[1] as string] = m[2] as string;
  return { ...found, ...given };
}

/** One Compose project of this repo's files, with its own name and env file. */
export class ComposeProject {
  constructor(
    readonly cli: ComposeCli,
    readonly name: string,
    readonly envFile: string,
    readonly files: string[],
  ) {}

  private argv(args: string[]): string[] {
    return [...this.cli.argv.slice(1), '--env-file', this.envFile, '-p', this.name, ...this.files.flatMap((f) => ['-f', repoPath(f)]), ...args];
  }

  /** Runs a Compose command in the repo root; throws with its output when it fails. */
  async run(args: string[], opts: { allowFail?: boolean } = {}): Promise<RunResult> {
    const r = await run(this.cli.argv[0] as string, this.argv(args), dockerEnv(), repoRoot);
    if (r.code !== 0 && !opts.allowFail) throw new Error(`${this.cli.argv.join(' ')} ${args.join(' ')} exited ${r.code}:\n${r.output.slice(-6000)}`);
    return r;
  }

  /** Container ids of a service (all replicas), running or not, ordered by replica number. */
  async containers(service?: string): Promise<string[]> {
    const r = await docker(['ps', '-a', '--no-trunc', '--filter', `label=com.docker.compose.project=${this.name}`, ...(service ? ['--filter', `label=com.docker.compose.service=${service}`] : []), '--format', '{{.Label "com.docker.compose.container-number"}} {{.ID}}']);
    return r.output
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(' ') as [string, string])
      .sort((a, b) => Number(a[0]) - Number(b[0]))
      .map(([, id]) => id);
  }

  /** Waits until every container of the project is running and healthy; returns the seconds waited. */
  async waitHealthy(timeoutMs: number): Promise<number> {
    const started = Date.now();
    let last = '';
    while (Date.now() - started < timeoutMs) {
      const ids = await this.containers();
      const states = await Promise.all(ids.map((id) => inspect(id, '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}')));
      last = states.join('\n');
      if (ids.length > 0 && states.every((s) => / running (healthy|none)$/.test(s))) return (Date.now() - started) / 1000;
      if (states.some((s) => / (exited|dead) /.test(s))) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    const logs = await this.run(['logs', '--tail', '30'], { allowFail: true });
    throw new Error(`the stack did not become healthy:\n${last}\n${logs.output.slice(-6000)}`);
  }

  /** Everything the project left: containers, volumes and networks (empty after `down -v`). */
  async leftovers(): Promise<string[]> {
    const filter = `label=com.docker.compose.project=${this.name}`;
    const lists = await Promise.all([
      docker(['ps', '-a', '-q', '--filter', filter]),
      docker(['volume', 'ls', '-q', '--filter', filter]),
      docker(['network', 'ls', '-q', '--filter', filter]),
    ]);
    return lists.flatMap((r) => r.output.trim().split('\n').filter(Boolean));
  }
}

export interface HttpAnswer {
  status: number;
  cache: string | null;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

/** One HTTP call with a JSON body; a network error or a timeout is status 0. */
/** The bearer credential `call` and `callInside` send when a call names none (a user's API key); '' sends none. */
let defaultToken = '';
export function useToken(token: string): void {
  defaultToken = token;
}

/** A failed fetch with its cause (undici puts the socket's error code there: ECONNRESET, UND_ERR_SOCKET...). */
function describeFetchError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause as { code?: string; message?: string } | undefined;
  return `${err.name}: ${err.message}${cause ? ` (cause: ${[cause.code, cause.message].filter(Boolean).join(' ')})` : ''}`;
}

export async function call(base: string, method: string, path: string, opts: { body?: unknown; token?: string; timeoutMs?: number } = {}): Promise<HttpAnswer> {
  const headers: Record<string, string> = {};
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const token = opts.token ?? defaultToken;
  if (token) headers.authorization = `Bearer ${token}`;
  try {
    const res = await fetch(`${base}${path}`, {
      method,
      headers,
      ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
      signal: AbortSignal.timeout(opts.timeoutMs ?? 15_000),
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, cache: res.headers.get('x-cache'), text, json };
  } catch (err) {
    return { status: 0, cache: null, text: describeFetchError(err), json: undefined };
  }
}

const IN_CONTAINER_FETCH = `const [m, u, b, t] = process.argv.slice(1);
const headers = { ...(b ? { 'content-type': 'application/json' } : {}), ...(t ? { authorization: 'Bearer ' + t } : {}) };
fetch(u, { method: m, headers, body: b || undefined, signal: AbortSignal.timeout(15000) })
  .then(async (r) => console.log(JSON.stringify({ status: r.status, cache: r.headers.get('x-cache'), text: await r.text() })),
        (e) => console.log(JSON.stringify({ status: 0, cache: null, text: String(e) })));`;

/**
 * The same call made from inside a container to its own port: reaches that one replica, not the load balancer.
 * A token goes as a bearer token (in the exec's argv: test secrets only).
 */
export async function callInside(container: string, port: number, method: string, path: string, body?: unknown, token?: string): Promise<HttpAnswer> {
  const bearer = token ?? defaultToken;
  const argv = [method, `http://127.0.0.1:${port}${path}`, body === undefined ? '' : JSON.stringify(body), ...(bearer ? [bearer] : [])];
  const r = await docker(['exec', container, 'node', '-e', IN_CONTAINER_FETCH, ...argv]);
  const answer = JSON.parse(r.output.trim().split('\n').at(-1) as string) as Omit<HttpAnswer, 'json'>;
  let json: unknown;
  try {
    json = JSON.parse(answer.text);
  } catch {
    json = undefined;
  }
  return { ...answer, json };
}

export interface LoadSample {
  at: number;
  status: number;
  cache: string | null;
  text: string;
}

export interface Load {
  /** Stops the loops and returns every answer they got, in order of arrival. */
  stop(): Promise<LoadSample[]>;
  /** Answers so far. */
  readonly samples: LoadSample[];
}

/** `concurrency` loops each sending `next(i)` one after another until stop() (bounded: at most 60 s). */
export function startLoad(concurrency: number, next: (i: number) => Promise<HttpAnswer>): Load {
  const samples: LoadSample[] = [];
  const deadline = Date.now() + 60_000;
  let running = true;
  let n = 0;
  const loops = Array.from({ length: concurrency }, async () => {
    while (running && Date.now() < deadline) {
      const a = await next(n++);
      samples.push({ at: Date.now(), status: a.status, cache: a.cache, text: a.status === 200 || a.status === 201 ? '' : a.text.slice(0, 300) });
    }
  });
  return {
    samples,
    async stop() {
      running = false;
      await Promise.all(loops);
      return samples;
    },
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every 200 ms until it returns a value other than undefined, or throws after `timeoutMs`. */
export async function until<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(200);
  }
}
