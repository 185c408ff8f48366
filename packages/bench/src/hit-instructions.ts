// pnpm --filter @aicache/bench run bench:hit-instructions: machine instructions per hit from a real Redis, the
// library beside a bare ioredis client, counted by valgrind's callgrind (user space of the Node process only: not
// the kernel, not redis-server). Unlike CPU time, a count barely moves with the machine's load, so two builds or
// two ops can be compared on a busy machine. Each op runs in its own `node dist/hit-real.js` under callgrind
// (--single-threaded: no background JIT or GC threads, whose work would land at random in the count); the
// counters are zeroed after the warm-up and dumped after the measured calls (marks from hit-real.js), so only
// those calls are counted. Runs of each op alternate; the figure is the median over runs of the mutator's instructions:
// V8's compilers (they still run now and then after the warm-up, whenever V8 decides, and can swamp a 5,000-call
// window) and its GC (whose share follows the heap's state at each collection: it moved 5x between two runs of one
// build) are printed apart. Two runs of one build agreed within ~1% on the mutator figure.
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

/** V8's compilers: they run when V8 decides (here still, now and then, after the warm-up), not once per call. */
const COMPILER =
  /Zone::|Zone[A-Z]|Assembler|AstNode|SourcePosition|v8::internal::compiler::|maglev::|baseline::|Compil|Deoptimiz|v8::internal::Parser|v8::internal::Scanner|interpreter::BytecodeGenerator|RegisterAllocat|InstructionSelector|CodeGenerator/;
/** V8's garbage collector: its share follows the heap's state at each collection, which moves between runs of one build. */
const GC =
  /Scaveng|Sweeper|Heap::|Evacuat|Pretenuring|MarkCompact|Marking|IteratePointers|BodyDescriptor|IterateObjectCache|ShouldBePromoted|SemiSpace|SizeFromMap|MemoryAllocator|PagedSpace|NewSpace|GCTracer|ActiveSystemPages|MemoryChunk|FreeList|heap::base|cppgc|RememberedSet|SlotSet|Worklist|LocalHeap|OnMoveEvent|PerfBasicLogger/;

/** A dump's instructions split by callgrind_annotate's per-function totals: compilers, GC, and the rest. */
function split(dump: string): { compiler: number; gc: number } {
  const text = execFileSync('callgrind_annotate', ['--threshold=100', dump], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  let compiler = 0;
  let gc = 0;
  for (const line of text.split('\n')) {
    const m = /^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)$/.exec(line);
    if (!m || m[2]!.startsWith('PROGRAM TOTALS')) continue;
    const n = Number(m[1]!.replace(/,/g, ''));
    if (COMPILER.test(m[2]!)) compiler += n;
    else if (GC.test(m[2]!)) gc += n;
  }
  return { compiler, gc };
}

/** Instructions counted between the two marks of one run of `op`: in all, in the GC, and neither compiler nor GC. */
async function countOnce(op: string, url: string): Promise<{ all: number; gc: number; mutator: number }> {
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
    const dump = join(dir, parts[0]!);
    const m = /^(?:summary|totals): (\d+)/m.exec(readFileSync(dump, 'utf8'));
    if (!m) throw new Error(`${op}: no totals in the dump`);
    const all = Number(m[1]);
    const { compiler, gc } = split(dump);
    // BENCH_HIT_INSTR_KEEP=<dir>: the dumps are kept there, for callgrind_annotate.
    const keep = process.env.BENCH_HIT_INSTR_KEEP;
    if (keep) {
      const name = `${op.replace(/[^a-zA-Z0-9]+/g, '_')}.${child.pid ?? 0}`;
      copyFileSync(join(dir, parts[0]!), join(keep, `${name}.callgrind`));
      const map = `/tmp/perf-${child.pid ?? 0}.map`;
      if (existsSync(map)) renameSync(map, join(keep, `${name}.map`));
    }
    return { all, gc, mutator: all - compiler - gc };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const server = await startRedisServer({ args: ['--maxmemory', '0'] });
try {
  // Per call: the mutator (compiled JS, builtins, runtime, libuv: the figure compared), the GC, and in all.
  const counts: Record<string, number[]> = Object.fromEntries(OPS.map((o) => [o, []]));
  const gcs: Record<string, number[]> = Object.fromEntries(OPS.map((o) => [o, []]));
  const totals: Record<string, number[]> = Object.fromEntries(OPS.map((o) => [o, []]));
  for (let run = 0; run < RUNS; run++) {
    for (const op of OPS) {
      const c = await countOnce(op, server.url);
      counts[op]!.push(c.mutator / CALLS);
      gcs[op]!.push(c.gc / CALLS);
      totals[op]!.push(c.all / CALLS);
      process.stderr.write(`run ${run + 1}/${RUNS} ${op}: ${Math.round(c.mutator / CALLS)} instructions per call (GC ${Math.round(c.gc / CALLS)}, all ${Math.round(c.all / CALLS)})\n`);
    }
  }
  const per = (op: string): number => median(counts[op]!);
  const has = (op: string): boolean => OPS.includes(op);
  process.stdout.write(
    `instructions per hit (callgrind, user space of the client process, median of ${RUNS} runs x ${CALLS} calls; V8's compilers and GC apart):\n` +
      OPS.map(
        (op) =>
          `  ${op.padEnd(24)} ${Math.round(per(op))}  (runs: ${counts[op]!.map((c) => Math.round(c)).join(', ')}; GC: ${gcs[op]!.map((c) => Math.round(c)).join(', ')}; all: ${totals[op]!.map((c) => Math.round(c)).join(', ')})`,
      ).join('\n') +
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
