#!/usr/bin/env node
// Runs the pnpm version pinned in package.json, so `npm test` / `npm start` work on a machine
// that has only Node and npm: a matching global pnpm is used when present, else npx fetches it.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pinned = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).packageManager.split('@')[1];
const args = process.argv.slice(2);

function run(cmd, cmdArgs) {
  return spawnSync(cmd, cmdArgs, { stdio: 'inherit', cwd: process.cwd(), env: process.env });
}

const probe = spawnSync('pnpm', ['--version'], { encoding: 'utf8' });
const local = probe.status === 0 ? probe.stdout.trim() : '';
const res = local.split('.')[0] === pinned.split('.')[0]
  ? run('pnpm', args)
  : run('npx', ['--yes', `pnpm@${pinned}`, ...args]);
process.exit(res.status ?? 1);
