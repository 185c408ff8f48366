// pnpm bench: side-by-side measurements of @aicache/cache, printed as one table of ratios.
// Options: --json <path> (also write the result as JSON), --only 1,2,... (run some sections).
// Env: BENCH_QUICK=1 (smoke sizes), BENCH_REDIS_URL=<url>|1 (use that Redis, or REDIS_URL, instead of a private one).
import { cpus, loadavg, totalmem, platform, release } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { benchParams } from './params.js';
import { benchRedis, client, parseInfo } from './redis.js';
import { errorRow, renderTable, ROW_IDS, type Row, type RowId } from './results.js';
import type { SectionContext } from './sections/context.js';
import { httpSection } from './sections/http.js';
import { librarySection } from './sections/library.js';
import { stampedeSection } from './sections/stampede.js';
import { batchSection } from './sections/batch.js';
import { invalidationSection } from './sections/invalidation.js';
import { memorySection } from './sections/memory.js';
import { clusterSection } from './sections/cluster.js';

type Section = (ctx: SectionContext) => Promise<{ rows: Row[]; details: unknown }>;

const SECTIONS: Array<{ key: string; name: string; rows: RowId[]; run: Section }> = [
  { key: '1', name: 'HTTP', rows: ['1a', '1b'], run: httpSection },
  { key: '2', name: 'library hits', rows: ['2a', '2b', '2c'], run: librarySection },
  { key: '3', name: 'stampede', rows: ['3'], run: stampedeSection },
  { key: '4', name: 'batch embeddings', rows: ['4a', '4b'], run: batchSection },
  { key: '5', name: 'invalidation', rows: ['5'], run: invalidationSection },
  { key: '6', name: 'memory', rows: ['6'], run: memorySection },
  { key: '7', name: 'Redis Cluster', rows: ['7a', '7b'], run: clusterSection },
];

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((res, rej) => {
    const t = setTimeout(() => rej(new Error(`${what} did not finish within ${Math.round(ms / 1000)} s`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        res(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        rej(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

async function main(): Promise<void> {
  const params = benchParams();
  const jsonPath = argValue('--json');
  const only = argValue('--only')?.split(',').map((s) => s.trim());
  const log = (msg: string): void => void process.stderr.write(`${msg}\n`);

  const redis = await benchRedis();
  const startedAt = new Date().toISOString();
  const loadBefore = loadavg();
  try {
    const admin = client(redis.url);
    const server = parseInfo(await admin.info('server'));
    admin.disconnect();
    const cpu = cpus();
    const machine = {
      cpus: cpu.length,
      cpuModel: cpu[0]?.model ?? 'unknown',
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      os: `${platform()} ${release()}`,
      node: process.version,
      redis: server.redis_version ?? 'unknown',
      redisSource: redis.private ? 'private redis-server started by the bench' : `external (${redis.host}:${redis.port})`,
      mode: params.quick ? 'quick (BENCH_QUICK=1): smoke sizes, figures are not meaningful' : 'full',
    };

    const ctx: SectionContext = { redisUrl: redis.url, privateRedis: redis.private, params, log };
    const rows: Row[] = [];
    const details: Record<string, unknown> = {};
    for (const s of SECTIONS) {
      if (only && !only.includes(s.key)) continue;
      log(`[${s.key}] ${s.name}...`);
      const t0 = Date.now();
      try {
        const out = await withTimeout(s.run(ctx), params.quick ? 120_000 : 600_000, `section ${s.key}`);
        rows.push(...out.rows);
        details[s.key] = out.details;
      } catch (err) {
        log(`  failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
        rows.push(...s.rows.map((id) => errorRow(id, err)));
      }
      log(`  (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    }
    rows.sort((a, b) => ROW_IDS.indexOf(a.id as RowId) - ROW_IDS.indexOf(b.id as RowId));
    const loadAfter = loadavg();

    const header = [
      `@aicache/cache benchmark — ${startedAt}`,
      `machine: ${machine.cpus} x ${machine.cpuModel}, ${machine.memoryGiB} GiB, ${machine.os}`,
      `node ${machine.node}, redis ${machine.redis} (${machine.redisSource})`,
      `load average (1/5/15 min): before ${loadBefore.map((x) => x.toFixed(2)).join(' ')}, after ${loadAfter.map((x) => x.toFixed(2)).join(' ')}`,
      `mode: ${machine.mode}`,
      '',
    ].join('\n');
    process.stdout.write(`${header}\n${renderTable(rows)}\n`);

    if (jsonPath) {
      const path = resolve(process.env.INIT_CWD ?? process.cwd(), jsonPath);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, `${JSON.stringify({ startedAt, machine, loadBefore, loadAfter, params, rows, details }, null, 2)}\n`);
      log(`JSON written to ${path}`);
    }
    process.exitCode = rows.some((r) => r.status === 'error') ? 1 : 0;
  } finally {
    await redis.stop();
  }
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
