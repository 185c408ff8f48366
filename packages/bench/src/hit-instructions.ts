// pnpm --filter @aicache/bench run bench:hit-instructions: machine instructions per hit from a real Redis, the
// library beside a bare ioredis client, counted by valgrind's callgrind (user space of the Node process only: not
// the kernel, not redis-server). Unlike CPU time, a count barely moves with the machine's load, so two builds or
// two ops can be compared on a busy machine. Each op runs in its own `node dist/hit-real.js` under callgrind
// (--single-threaded: no background JIT or GC threads, whose work would land at random in the count); the
// counters are zeroed after the warm-up and dumped after the measured calls (marks from hit-real.js), so only
// those calls are counted. Runs of each op alternate; the figure is the median over runs.
// Env: BENCH_HIT_INSTR_RUNS (3), BENCH_HIT_CALLS (10000 per run), BENCH_HIT_WARMUP (30000), BENCH_HIT_OPS (comma list, default all four),
// BENCH_HIT_INSTR_KEEP (a directory to keep the dumps in, for callgrind_annotate).
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, renameSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startRedisServer } from '@aicache/test-redis';
import { median } from './stats.js';

const RUNS = Number(process.env.BENCH_HIT_INSTR_RUNS ?? 3);
const CALLS = Number(process.env.BENCH_HIT_CALLS ?? 10_000);
/** Calls before the count starts: enough for the JIT to have settled, or its compiling lands in the count. */
const WARMUP = Number(process.env.BENCH_HIT_WARMUP ?? 30_000);
const OPS = (process.env.BENCH_HIT_OPS ?? 'bare getBuffer (bytes),wrapJson hit,bare GET + JSON.parse,getOrSet hit').split(',');
/** BENCH_HIT_NODE_FLAGS: more node flags, e.g. --perf-basic-prof (its /tmp/perf-<pid>.map names the JIT code). */
const NODE_FLAGS = (process.env.BENCH_HIT_NODE_FLAGS ?? '').split(' ').filter(Boolean);
const script = join(dirname(fileURLToPath(import.meta.url)), 'hit-real.js');

/** Instructions counted between the two marks of one run of `op`. */
async function countOnce(op: string, url: string): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'hit-instr-'));
  try {
    const child = spawn('valgrind', ['--tool=callgrind', `--callgrind-out-file=${join(dir, 'cg.out')}`, 'node', '--single-threaded', ...NODE_FLAGS, script], {
      env: { ...process.env, BENCH_HIT_ONLY: op, BENCH_HIT_CALLS: String(CALLS), BENCH_HIT_WARMUP: String(WARMUP), BENCH_HIT_MARK: '1', BENCH_HIT_REDIS_URL: url },
      stdio: ['ignore', 'inherit', 'pipe'],
    });
    const log: string[] = [];
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    for await (const line of createInterface({ input: child.stderr })) {
      const m = /^HIT-REAL (zero|dump) (\d+)$/.exec(line);
      if (!m) {
        log.push(line);
        continue;
      }
      // callgrind_control waits until the tool has done it; then the script goes on.
      execFileSync('callgrind_control', [m[1] === 'zero' ? '-z' : '-d', m[2]!], { stdio: 'ignore' });
      process.kill(Number(m[2]), 'SIGUSR2');
    }
    const code = await exited;
    if (code !== 0) throw new Error(`${op}: exited ${String(code)}\n${log.slice(-20).join('\n')}`);
    // The dump asked for at the second mark: the first numbered part after the final one at exit is not it.
    const parts = readdirSync(dir).filter((f) => /^cg\.out\.\d+$/.test(f));
    if (parts.length !== 1) throw new Error(`${op}: expected one dump, found ${parts.join(', ') || 'none'}`);
    const m = /^(?:summary|totals): (\d+)/m.exec(readFileSync(join(dir, parts[0]!), 'utf8'));
    if (!m) throw new Error(`${op}: no totals in the dump`);
    // BENCH_HIT_INSTR_KEEP=<dir>: the dumps are kept there, for callgrind_annotate.
    const keep = process.env.BENCH_HIT_INSTR_KEEP;
    if (keep) {
      const name = `${op.replace(/[^a-zA-Z0-9]+/g, '_')}.${child.pid ?? 0}`;
      copyFileSync(join(dir, parts[0]!), join(keep, `${name}.callgrind`));
      const map = `/tmp/perf-${child.pid ?? 0}.map`;
      if (existsSync(map)) renameSync(map, join(keep, `${name}.map`));
    }
    return Number(m[1]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const server = await startRedisServer({ args: ['--maxmemory', '0'] });
try {
  const counts: Record<string, number[]> = Object.fromEntries(OPS.map((o) => [o, []]));
  for (let run = 0; run < RUNS; run++) {
    for (const op of OPS) {
      counts[op]!.push((await countOnce(op, server.url)) / CALLS);
      process.stderr.write(`run ${run + 1}/${RUNS} ${op}: ${Math.round(counts[op]!.at(-1)!)} instructions per call\n`);
    }
  }
  const per = (op: string): number => median(counts[op]!);
  const has = (op: string): boolean => OPS.includes(op);
  process.stdout.write(
    `instructions per hit (callgrind, user space of the client process, median of ${RUNS} runs x ${CALLS} calls):\n` +
      OPS.map((op) => `  ${op.padEnd(24)} ${Math.round(per(op))}  (runs: ${counts[op]!.map((c) => Math.round(c)).join(', ')})`).join('\n') +
      '\n' +
      (has('wrapJson hit') && has('bare getBuffer (bytes)')
        ? `  wrapJson over bare getBuffer: ${Math.round(per('wrapJson hit') - per('bare getBuffer (bytes)'))} (${(per('wrapJson hit') / per('bare getBuffer (bytes)')).toFixed(3)}x)\n`
        : '') +
      (has('getOrSet hit') && has('bare GET + JSON.parse')
        ? `  getOrSet over bare GET + JSON.parse: ${Math.round(per('getOrSet hit') - per('bare GET + JSON.parse'))} (${(per('getOrSet hit') / per('bare GET + JSON.parse')).toFixed(3)}x)\n`
        : ''),
  );
} finally {
  await server.stop();
}
