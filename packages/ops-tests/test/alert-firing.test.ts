import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { startPrometheus, type PrometheusServer } from './prometheus.js';
import { MISSING_PROMETHEUS, RULES, which } from './repo.js';
import { SERVICES, startOpsStack, type OpsStack } from './stack.js';

const prometheusBin = which('prometheus');

interface Alert {
  labels: Record<string, string>;
  state: 'pending' | 'firing';
}

/**
 * The production rules with every `for:` shortened to 1 s: this test shows that the expressions fire on what the
 * real services expose; the durations themselves are covered by the promtool unit tests.
 */
function rulesWithShortFor(): string {
  const doc = parse(readFileSync(RULES, 'utf8')) as { groups: Array<{ rules: Array<Record<string, unknown>> }> };
  for (const g of doc.groups) for (const r of g.rules) if (r.for !== undefined) r.for = '1s';
  return stringify(doc);
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms: number, between?: () => Promise<void>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = await probe();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms / 1000} s`);
    await between?.();
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe.skipIf(!prometheusBin)(`a real Prometheus scraping the running services${prometheusBin ? '' : `: skipped, ${MISSING_PROMETHEUS}`}`, () => {
  let stack: OpsStack;
  let prom: PrometheusServer;

  beforeAll(async () => {
    stack = await startOpsStack();
    prom = await startPrometheus(
      prometheusBin as string,
      SERVICES.map((s) => new URL(stack.services[s].url).host),
      rulesWithShortFor(),
    );
  });
  afterAll(async () => {
    await prom?.stop();
    await stack?.stop();
  });

  it('scrapes all three services, then fires CacheCircuitOpen and RedisDown once the cache Redis is killed', async () => {
    const worker = stack.services['multimodal-worker'];
    await until(
      'all three targets up',
      async () => {
        const t = await prom.api<{ activeTargets: Array<{ health: string }> }>('targets');
        return t.activeTargets.length === 3 && t.activeTargets.every((x) => x.health === 'up') ? true : undefined;
      },
      30_000,
    );
    // With the Redis up, a few evaluations pass without the alert.
    await until('the breaker figure scraped', async () => {
      const q = await prom.api<{ result: unknown[] }>('query?query=cache_circuit_breaker_state');
      return q.result.length === 3 ? true : undefined;
    }, 30_000);
    const before = await prom.api<{ alerts: Alert[] }>('alerts');
    expect(before.alerts.filter((a) => a.labels.alertname === 'CacheCircuitOpen' || a.labels.alertname === 'RedisDown')).toEqual([]);

    await stack.cacheRedis.kill();
    // Cache traffic on the worker: each call fails against the dead Redis until the circuit opens (answers stay 200, from origin).
    const traffic = async (): Promise<void> => {
      const res = await fetch(`${worker.url}/api/v1/embeddings`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ input: [`text ${Date.now()}`] }),
        signal: AbortSignal.timeout(5000),
      });
      expect(res.status).toBe(200);
    };
    const firing = await until(
      'CacheCircuitOpen firing for multimodal-worker',
      async () => {
        const { alerts } = await prom.api<{ alerts: Alert[] }>('alerts');
        const hit = alerts.find((a) => a.labels.alertname === 'CacheCircuitOpen' && a.labels.service === 'multimodal-worker' && a.state === 'firing');
        return hit ? alerts : undefined;
      },
      60_000,
      async () => {
        for (let i = 0; i < 6; i++) await traffic();
      },
    );
    expect(firing.find((a) => a.labels.alertname === 'CacheCircuitOpen')?.labels.severity).toBe('critical');

    const down = await until(
      'RedisDown firing for the cache Redis of every service',
      async () => {
        const { alerts } = await prom.api<{ alerts: Alert[] }>('alerts');
        const services = alerts.filter((a) => a.labels.alertname === 'RedisDown' && a.labels.redis === 'cache' && a.state === 'firing').map((a) => a.labels.service);
        return services.length === 3 ? services.sort() : undefined;
      },
      60_000,
    );
    expect(down).toEqual([...SERVICES].sort());
    // The state Redis is still there: no alert about it.
    const { alerts } = await prom.api<{ alerts: Alert[] }>('alerts');
    expect(alerts.filter((a) => a.labels.redis === 'state' || a.labels.alertname === 'StateRedisNotDurable')).toEqual([]);
  });
});
