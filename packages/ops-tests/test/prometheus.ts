import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@aicache/test-redis';

export interface PrometheusServer {
  url: string;
  dir: string;
  output(): string;
  /** GET /api/v1/<path>, its `data`. */
  api<T>(path: string): Promise<T>;
  stop(): Promise<void>;
}

/**
 * Debian's `prometheus` in its own temp dir on a free port: scrapes `targets` every second and evaluates `rules`
 * (file contents) every second.
 */
export async function startPrometheus(bin: string, targets: string[], rules: string): Promise<PrometheusServer> {
  const dir = mkdtempSync(join(tmpdir(), 'aicache-prom-'));
  const port = await freePort();
  writeFileSync(join(dir, 'alerts.yml'), rules);
  writeFileSync(
    join(dir, 'prometheus.yml'),
    [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      '  evaluation_interval: 1s',
      'rule_files:',
      `  - ${join(dir, 'alerts.yml')}`,
      'scrape_configs:',
      '  - job_name: aicache',
      '    static_configs:',
      `      - targets: [${targets.map((t) => JSON.stringify(t)).join(', ')}]`,
      '',
    ].join('\n'),
  );
  let out = '';
  const child: ChildProcess = spawn(
    bin,
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--web.enable-lifecycle',
    ],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;

  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`prometheus exited at start:\n${out.slice(-3000)}`);
    }
    const ok = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) }).then((r) => r.status === 200, () => false);
    if (ok) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`prometheus not ready within 30 s:\n${out.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }

  return {
    url,
    dir,
    output: () => out,
    async api<T>(path: string): Promise<T> {
      const res = await fetch(`${url}/api/v1/${path}`, { signal: AbortSignal.timeout(5000) });
      const body = (await res.json()) as { status: string; data: T; error?: string };
      if (body.status !== 'success') throw new Error(`prometheus ${path}: ${body.error ?? res.status}`);
      return body.data;
    },
    stop,
  };
}
