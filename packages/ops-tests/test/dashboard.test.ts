import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { exposedNames, metricNames } from './promql.js';
import { REPO, RULES } from './repo.js';
import { SERVICES, scrape, startOpsStack, type OpsStack } from './stack.js';

interface Panel {
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: Array<{ expr: string; datasource?: { uid: string } }>;
}
const DASHBOARD_DIR = `${REPO}infra/grafana/dashboards`;
const dashboards = readdirSync(DASHBOARD_DIR)
  .filter((f) => f.endsWith('.json'))
  .map((f) => ({ file: f, doc: JSON.parse(readFileSync(`${DASHBOARD_DIR}/${f}`, 'utf8')) as { uid: string; panels: Panel[]; templating: { list: Array<{ query: { query: string } }> } } }));

function dashboardExprs(): Array<{ where: string; expr: string }> {
  return dashboards.flatMap(({ file, doc }) => [
    ...doc.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `${file}: ${p.title}`, expr: t.expr }))),
    ...doc.templating.list.map((v) => ({ where: `${file}: variable`, expr: v.query.query.replace(/^label_values\((.*),\s*\w+\)$/, '$1') })),
  ]);
}

function ruleExprs(): Array<{ where: string; expr: string }> {
  const doc = parse(readFileSync(RULES, 'utf8')) as { groups: Array<{ rules: Array<{ alert?: string; record?: string; expr: string }> }> };
  return doc.groups.flatMap((g) => g.rules.map((r) => ({ where: `alerts.yml: ${r.alert ?? r.record}`, expr: r.expr })));
}

describe('PromQL metric names', () => {
  it('are read from an expression without its labels, ranges, groupings and functions', () => {
    expect(
      metricNames('histogram_quantile(0.99, sum by (service, le) (rate(http_request_duration_seconds_bucket{route!~"/metrics|/x"}[5m]))) > 1 and on (service) up == 0'),
    ).toEqual(['http_request_duration_seconds_bucket', 'up']);
    expect(metricNames('max by (service, redis) (redis_memory_used_bytes and redis_memory_max_bytes == 0) > 256 * 1024 * 1024')).toEqual([
      'redis_memory_used_bytes',
      'redis_memory_max_bytes',
    ]);
  });
});

describe('the Grafana dashboard and the alert rules against real scrapes of the three services', () => {
  let stack: OpsStack;
  let exposed: Set<string>;

  beforeAll(async () => {
    // An L1 on the worker's embeddings, so the L1 figures exist to be checked.
    stack = await startOpsStack({ env: { 'multimodal-worker': { CACHE_L1_MAX_BYTES_EMBEDDINGS: '1000000' } } });
    const worker = stack.services['multimodal-worker'].url;
    // A miss and a hit: the per-category figures appear after the first lookup.
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${worker}/api/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: ['dashboard'] }) });
      expect(res.status).toBe(200);
    }
    exposed = new Set();
    for (const name of SERVICES) for (const n of exposedNames(await scrape(stack.services[name].url))) exposed.add(n);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('every panel and the rules read only metrics that the services expose', () => {
    const all = [...dashboardExprs(), ...ruleExprs()];
    expect(all.length).toBeGreaterThan(20);
    const unknown = all.flatMap(({ where, expr }) => metricNames(expr).filter((n) => !exposed.has(n)).map((n) => `${where}: ${n}`));
    expect(unknown).toEqual([]);
  });

  it('every metric family the kit adds is on some dashboard panel', () => {
    const used = new Set(dashboardExprs().flatMap(({ expr }) => metricNames(expr)));
    const ours = [...exposed].filter((n) => /^(cache_|redis_|state_redis_|http_request_)/.test(n)).map((n) => n.replace(/_(bucket|sum|count)$/, ''));
    const missing = [...new Set(ours)].filter((base) => ![...used].some((u) => u === base || u.startsWith(`${base}_`)));
    expect(missing).toEqual([]);
  });

  it('every panel uses the provisioned Prometheus datasource', () => {
    const provisioned = parse(readFileSync(`${REPO}infra/grafana/provisioning/datasources/prometheus.yml`, 'utf8')) as { datasources: Array<{ uid: string }> };
    const uid = provisioned.datasources[0]?.uid;
    for (const { doc } of dashboards) {
      for (const p of doc.panels.filter((x) => x.type !== 'row')) {
        expect(p.datasource?.uid, p.title).toBe(uid);
        for (const t of p.targets ?? []) expect(t.datasource?.uid, p.title).toBe(uid);
      }
    }
  });
});
