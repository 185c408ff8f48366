import { describe, expect, it } from 'vitest';
import { dockerInstructions, readRepoFile, repoFileExists } from '../src/index.js';

type Step = { op: string; args: string };

const steps = dockerInstructions(readRepoFile('Dockerfile'));
const lastStage = (all: Step[]): Step[] => all.slice(all.lastIndexOf(all.filter((s) => s.op === 'FROM').at(-1) as Step));

describe('Dockerfile (the three services, SERVICE and PORT as build args)', () => {
  it('is the only service Dockerfile: services/*/Dockerfile are gone', () => {
    for (const name of ['multimodal-worker', 'retrieval-proxy', 'ai-agents']) expect(repoFileExists('services', name, 'Dockerfile'), name).toBe(false);
  });

  it('builds on NODE_IMAGE, the public node image by default, with no `# syntax=` line (no frontend to pull)', () => {
    expect(readRepoFile('Dockerfile')).not.toMatch(/^#\s*syntax=/m);
    expect(steps[0]).toEqual({ op: 'ARG', args: 'NODE_IMAGE=node:20-bookworm-slim' });
    for (const from of steps.filter((s) => s.op === 'FROM')) expect(from.args).toMatch(/^\$\{NODE_IMAGE\}/);
  });

  it('caches the dependency layer: manifests and lockfile, install, then the sources', () => {
    const install = steps.findIndex((s) => s.op === 'RUN' && /pnpm install --frozen-lockfile/.test(s.args));
    const sources = steps.findIndex((s, i) => i > install && s.op === 'COPY' && /--from=prune \/pruned\/full\//.test(s.args));
    expect(install).toBeGreaterThan(0);
    expect(sources).toBeGreaterThan(install);
    const before = steps.slice(steps.findLastIndex((s, i) => i < install && s.op === 'FROM'), install);
    expect(before.filter((s) => s.op === 'COPY').map((s) => s.args)).toEqual(['--from=prune /pruned/json/ ./']);
  });

  it('takes what the services need with turbo prune, found from services/* (a new package needs no edit)', () => {
    const text = steps.map((s) => s.args).join('\n');
    expect(text).toMatch(/turbo prune \$\(for dir in services\/\*\/; do .*\) --docker/);
    expect(text).not.toMatch(/packages\/(cache|service-kit|test-redis)/);
    expect(text).not.toMatch(/@aicache\//);
  });

  it('reads SERVICE only after the shared build, so the three images share every layer but the last stage', () => {
    const firstServiceUse = steps.findIndex((s) => /\$\{?SERVICE\b/.test(s.args));
    const build = steps.findIndex((s) => s.op === 'RUN' && /run build/.test(s.args));
    expect(firstServiceUse).toBeGreaterThan(build);
  });

  it('runs as the non-root node user, exec-form node, with a HEALTHCHECK on /health', () => {
    const runtime = lastStage(steps);
    expect(runtime.filter((s) => s.op === 'USER').at(-1)?.args).toBe('node');
    expect(JSON.parse(runtime.find((s) => s.op === 'CMD')?.args ?? '[]')).toEqual(['node', 'dist/server.js']);
    expect(runtime.find((s) => s.op === 'HEALTHCHECK')?.args).toMatch(/\/health/);
    expect(runtime.some((s) => s.op === 'COPY' && /--from=build/.test(s.args))).toBe(true);
  });
});

describe('infra/haproxy/Dockerfile', () => {
  const lb = dockerInstructions(readRepoFile('infra', 'haproxy', 'Dockerfile'));

  it("installs Debian's haproxy on DEBIAN_IMAGE and runs it as the haproxy user with a HEALTHCHECK", () => {
    expect(lb[0]).toEqual({ op: 'ARG', args: 'DEBIAN_IMAGE=debian:bookworm-slim' });
    expect(lb.some((s) => s.op === 'RUN' && /apt-get install .*haproxy/.test(s.args))).toBe(true);
    expect(lb.filter((s) => s.op === 'USER').at(-1)?.args).toBe('haproxy');
    expect(lb.some((s) => s.op === 'HEALTHCHECK')).toBe(true);
  });
});

describe('.dockerignore', () => {
  const lines = readRepoFile('.dockerignore').split('\n').map((l) => l.trim());

  it('keeps host builds, installs and secrets out of the build context', () => {
    expect(lines).toContain('**/node_modules');
    expect(lines).toContain('**/dist');
    expect(lines).toContain('.env');
    expect(lines).toContain('.git');
  });
});

describe('infra/docker/postgres-base.Dockerfile (the stand-in for pgvector/pgvector:pg15)', () => {
  const pg = dockerInstructions(readRepoFile('infra', 'docker', 'postgres-base.Dockerfile'));
  const entrypoint = readRepoFile('infra', 'docker', 'postgres-entrypoint.sh');

  it("builds Debian's PostgreSQL 15 and pgvector with infra/scripts/install-pgvector.sh, without a main cluster or the build tools", () => {
    expect(pg[0]).toEqual({ op: 'ARG', args: 'BASE_IMAGE=aicache-base/debian:bookworm' });
    const install = pg.find((s) => s.op === 'RUN' && /install-pgvector\.sh 15/.test(s.args))?.args ?? '';
    expect(install).toMatch(/create_main_cluster = false/);
    expect(install).toMatch(/apt-get install .*postgresql-15/);
    expect(install).toMatch(/apt-get purge .*postgresql-server-dev-15/);
    expect(install).toMatch(/vector\.control/);
  });

  it('keeps the official image contract: PGDATA as a volume, pg_isready on the PATH, SIGINT to stop, postgres as the command', () => {
    const env = pg.filter((s) => s.op === 'ENV').map((s) => s.args).join(' ');
    expect(env).toMatch(/PGDATA=\/var\/lib\/postgresql\/data/);
    expect(env).toMatch(/PATH=\/usr\/lib\/postgresql\/15\/bin:/);
    expect(pg.find((s) => s.op === 'VOLUME')?.args).toBe('/var/lib/postgresql/data');
    expect(pg.find((s) => s.op === 'STOPSIGNAL')?.args).toBe('SIGINT');
    expect(JSON.parse(pg.find((s) => s.op === 'CMD')?.args ?? '[]')).toEqual(['postgres']);
  });

  it('initializes with the password from a file descriptor, scram-sha-256 for host connections, and refuses an empty password', () => {
    expect(entrypoint).toMatch(/--pwfile=<\(/);
    expect(entrypoint).toMatch(/--auth-host=scram-sha-256/);
    expect(entrypoint).toMatch(/host all all all scram-sha-256/);
    expect(entrypoint).toMatch(/POSTGRES_PASSWORD is empty/);
    expect(entrypoint).toMatch(/exec setpriv --reuid=postgres/);
  });
});
