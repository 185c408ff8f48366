import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ROW_IDS } from '../src/results.js';

const pkg = fileURLToPath(new URL('..', import.meta.url));
const runJs = join(pkg, 'dist', 'run.js');
const dir = mkdtempSync(join(tmpdir(), 'aicache-bench-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function runQuick(jsonPath: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    // BENCH_REDIS_URL removed: the run must start its own redis-server, as on a clean clone.
    const env: NodeJS.ProcessEnv = { ...process.env, BENCH_QUICK: '1' };
    delete env.BENCH_REDIS_URL;
    const child = spawn(process.execPath, [runJs, '--json', jsonPath], { cwd: pkg, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('pnpm bench in quick mode', () => {
  it('runs every section end to end against a Redis it starts and prints every row of the table', async () => {
    expect(existsSync(runJs), 'build the package first (pnpm --filter @aicache/bench build)').toBe(true);
    const jsonPath = join(dir, 'quick.json');
    const { code, stdout, stderr } = await runQuick(jsonPath);

    expect(stdout).toMatch(/^machine: \d+ x /m);
    expect(stdout).toMatch(/^node v\d+.*, redis \d+\.\d+/m);
    expect(stdout).toContain('private redis-server started by the bench');
    for (const id of ROW_IDS) expect(stdout, `row ${id} missing`).toMatch(new RegExp(`^\\| ${id} \\|`, 'm'));

    const result = JSON.parse(readFileSync(jsonPath, 'utf8')) as { rows: Array<{ id: string; status: string; note?: string }> };
    expect(result.rows.map((r) => r.id)).toEqual([...ROW_IDS]);
    const errors = result.rows.filter((r) => r.status === 'error').map((r) => `${r.id}: ${r.note ?? ''}`);
    expect(errors, stderr).toEqual([]);
    for (const r of result.rows) expect(['met', 'missed', 'inconclusive', 'not available', 'info']).toContain(r.status);
    expect(code).toBe(0);
  });
});
