import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { MISSING_PROMETHEUS, RULES, RULE_TESTS_DIR, which } from './repo.js';

const run = promisify(execFile);
const promtool = which('promtool');
const testFiles = (): string[] => readdirSync(RULE_TESTS_DIR).filter((f) => f.endsWith('.yml'));

describe.skipIf(!promtool)(`alert rules (promtool)${promtool ? '' : `: skipped, ${MISSING_PROMETHEUS}`}`, () => {
  it('promtool check rules accepts infra/prometheus/alerts.yml', async () => {
    const { stdout } = await run(promtool as string, ['check', 'rules', RULES]);
    expect(stdout).toMatch(/SUCCESS: \d+ rules found/);
  });

  it('promtool check config accepts infra/prometheus/prometheus.yml (and the rules it names)', async () => {
    const { stdout } = await run(promtool as string, ['check', 'config', RULES.replace(/alerts\.yml$/, 'prometheus.yml')]);
    expect(stdout).toMatch(/is valid prometheus config file syntax/);
  });

  it('promtool test rules passes every unit test beside the rules', async () => {
    expect(testFiles().length).toBeGreaterThan(0);
    const { stdout } = await run(promtool as string, ['test', 'rules', ...testFiles()], { cwd: RULE_TESTS_DIR });
    expect(stdout).toContain('SUCCESS');
  });
});

describe('alert rule unit tests', () => {
  it('show every alert firing at least once', () => {
    const rules = parse(readFileSync(RULES, 'utf8')) as { groups: Array<{ rules: Array<{ alert?: string }> }> };
    const alerts = rules.groups.flatMap((g) => g.rules.flatMap((r) => (r.alert ? [r.alert] : [])));
    expect(alerts.length).toBeGreaterThan(5);
    const tested = new Set<string>();
    for (const f of testFiles()) {
      const doc = parse(readFileSync(`${RULE_TESTS_DIR}/${f}`, 'utf8')) as {
        tests: Array<{ alert_rule_test?: Array<{ alertname: string; exp_alerts: unknown[] }> }>;
      };
      for (const t of doc.tests) for (const a of t.alert_rule_test ?? []) if (a.exp_alerts.length > 0) tested.add(a.alertname);
    }
    expect(alerts.filter((a) => !tested.has(a))).toEqual([]);
  });
});
