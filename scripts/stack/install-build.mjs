// Steps 1 and 2 of npm start: install when the lockfile or a package.json changed since the last
// install, then build (turbo; cached builds are instant).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fail, rel, say } from './log.mjs';
import { root } from './paths.mjs';

function mtime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

function workspacePackageDirs() {
  const dirs = [];
  for (const group of ['packages', 'services']) {
    const base = join(root, group);
    if (!existsSync(base)) continue;
    for (const name of readdirSync(base)) {
      if (existsSync(join(base, name, 'package.json'))) dirs.push(join(base, name));
    }
  }
  return dirs;
}

/** Why an install is needed, or undefined when node_modules is newer than every manifest. */
function installNeeded() {
  const marker = mtime(join(root, 'node_modules', '.modules.yaml'));
  if (marker === 0) return 'no node_modules yet';
  if (mtime(join(root, 'pnpm-lock.yaml')) > marker) return 'pnpm-lock.yaml changed';
  for (const dir of [root, ...workspacePackageDirs()]) {
    if (mtime(join(dir, 'package.json')) > marker) return `${rel(join(dir, 'package.json'))} changed`;
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    const hasDeps = Object.keys({ ...pkg.dependencies, ...pkg.devDependencies }).length > 0;
    if (hasDeps && !existsSync(join(dir, 'node_modules'))) return `${rel(dir)} has no node_modules`;
  }
  return undefined;
}

function pnpm(title, args) {
  say(title);
  const res = spawnSync(process.execPath, [join(root, 'scripts', 'pnpm.mjs'), ...args], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1', DO_NOT_TRACK: '1' },
  });
  if (res.status !== 0) {
    fail(`${title} failed (exit ${res.status ?? res.signal}). Fix the error above and run npm start again.`);
    process.exit(1);
  }
}

export function installIfNeeded() {
  const why = installNeeded();
  if (why) pnpm(`installing dependencies (${why})`, ['install', '--frozen-lockfile']);
}

/** Builds the named services and the workspace packages they depend on. */
export function build(serviceNames) {
  pnpm('building the services', [
    'exec', 'turbo', 'run', 'build', '--output-logs=errors-only',
    ...serviceNames.map((name) => `--filter=@aicache/${name}...`),
  ]);
}
