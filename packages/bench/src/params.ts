/** Sizes of every measurement; BENCH_QUICK=1 shrinks them to a smoke run that only proves each row works. */
export interface BenchParams {
  quick: boolean;
  http: { rounds: number; seconds: number; warmupSeconds: number; connections: number };
  library: { rounds: number; ops: number; concurrency: number; keys: number };
  stampede: { rounds: number; processes: number; callersPerProcess: number; loaderMs: number };
  batch: { rounds: number; inputs: number; dims: number; cachedFraction: number };
  invalidation: { keys: number; pingEveryMs: number; delChunk: number };
  memory: { dims: number };
}

export function benchParams(env: Record<string, string | undefined> = process.env): BenchParams {
  const quick = env.BENCH_QUICK === '1' || env.BENCH_QUICK === 'true';
  return {
    quick,
    http: quick
      ? { rounds: 2, seconds: 1, warmupSeconds: 1, connections: 8 }
      : { rounds: 10, seconds: 2, warmupSeconds: 2, connections: 8 },
    library: quick
      ? { rounds: 2, ops: 2_000, concurrency: 50, keys: 200 }
      : { rounds: 15, ops: 5_000, concurrency: 50, keys: 1_000 },
    stampede: { rounds: quick ? 1 : 3, processes: 4, callersPerProcess: 250, loaderMs: 50 },
    batch: { rounds: quick ? 3 : 15, inputs: 256, dims: 1536, cachedFraction: 0.9 },
    invalidation: { keys: quick ? 50_000 : 1_000_000, pingEveryMs: 1, delChunk: 10_000 },
    memory: { dims: 1536 },
  };
}
