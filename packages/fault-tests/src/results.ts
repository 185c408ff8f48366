import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** packages/fault-tests/results/faults.json (git-ignored): the figures the lead quotes. */
export const RESULTS_FILE = join(dirname(fileURLToPath(import.meta.url)), '..', 'results', 'faults.json');

/** Merges `figures` under `section` into the results file (each test file owns its sections). */
export function recordFigures(section: string, figures: unknown, file = RESULTS_FILE): void {
  mkdirSync(dirname(file), { recursive: true });
  let current: Record<string, unknown> = {};
  if (existsSync(file)) {
    try {
      current = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    } catch {
      current = {};
    }
  }
  current.machine = { cpus: cpus().length, node: process.version, platform: process.platform };
  current[section] = { measuredAt: new Date().toISOString(), ...(figures as object) };
  writeFileSync(file, `${JSON.stringify(current, null, 2)}\n`);
}

/** Prints figures as one clear block in the test output. */
export function printFigures(title: string, rows: Array<[string, unknown]>): void {
  const width = Math.max(...rows.map(([k]) => k.length));
  const lines = rows.map(([k, v]) => `  ${k.padEnd(width)}  ${typeof v === 'string' ? v : JSON.stringify(v)}`);
  const bar = '='.repeat(Math.max(title.length + 8, 60));
  console.log(`\n${bar}\n=== ${title}\n${lines.join('\n')}\n${bar}`);
}
