import { describe, expect, it } from 'vitest';
import { SERVICES, dockerInstructions, readRepoFile, repoFileExists } from '../src/index.js';

describe.each(SERVICES.map((s) => [s.name, s] as const))('services/%s/Dockerfile', (name, spec) => {
  const path = `services/${name}/Dockerfile`;
  const exists = repoFileExists(path);
  const steps = exists ? dockerInstructions(readRepoFile(path)) : [];

  it('exists (docker-compose.yml builds from it)', () => {
    expect(exists, `${path} is missing`).toBe(true);
  });

  it.runIf(exists)('is multi-stage: the runtime stage copies the build out of a build stage', () => {
    const froms = steps.filter((s) => s.op === 'FROM');
    expect(froms.length).toBeGreaterThanOrEqual(2);
    const lastFrom = steps.lastIndexOf(froms.at(-1) as (typeof steps)[number]);
    expect(steps.slice(lastFrom).some((s) => s.op === 'COPY' && /--from=/.test(s.args))).toBe(true);
  });

  it.runIf(exists)('installs from the lockfile as it is (--frozen-lockfile)', () => {
    expect(steps.some((s) => s.op === 'RUN' && /install\b.*--frozen-lockfile/.test(s.args))).toBe(true);
  });

  it.runIf(exists)('runs as a non-root user', () => {
    const users = steps.filter((s) => s.op === 'USER');
    expect(users.length).toBeGreaterThan(0);
    const user = (users.at(-1)?.args ?? '').split(':')[0];
    expect(['root', '0', '']).not.toContain(user);
  });

  it.runIf(exists)('starts node in exec form so SIGTERM reaches the app', () => {
    const cmd = steps.filter((s) => s.op === 'CMD').at(-1);
    expect(cmd).toBeDefined();
    const argv = JSON.parse(cmd?.args ?? '') as string[];
    expect(argv[0]).toBe('node');
    expect(argv.slice(1).join(' ')).toMatch(/server\.js/);
    const entrypoint = steps.filter((s) => s.op === 'ENTRYPOINT').at(-1);
    if (entrypoint) expect(entrypoint.args.startsWith('[')).toBe(true);
  });

  it.runIf(exists)(`listens where compose expects it (port ${spec.port})`, () => {
    const text = readRepoFile(path);
    expect(text).toMatch(new RegExp(`\\b${spec.port}\\b`));
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
