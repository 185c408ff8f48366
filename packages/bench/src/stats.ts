export function median(xs: number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Nearest-rank percentile, p in 0..100. */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[rank]!;
}

export function max(xs: number[]): number {
  return xs.reduce((m, x) => (x > m ? x : m), Number.NEGATIVE_INFINITY);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/**
 * Runs `total` calls of `fn` with at most `concurrency` in flight and answers the wall time in ms.
 * Workers pull the next index from a shared counter, so a slow call never idles the others.
 */
export async function runBounded(total: number, concurrency: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const t0 = nowMs();
  const worker = async (): Promise<void> => {
    while (next < total) {
      const i = next++;
      await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  return nowMs() - t0;
}

/** Rotates the order of contenders each round (ABC, BCA, CAB...) so none always runs first or last. */
export function rotation<T>(items: readonly T[], round: number): T[] {
  const k = round % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

/**
 * CPU µs per call of each op (user + system of this process, and system alone), over `rounds` rounds in which the
 * ops take turns in a rotated order, `calls` calls each with `inFlight` in flight.
 */
export async function alternatingCpu(
  ops: Record<string, (i: number) => Promise<unknown>>,
  rounds: number,
  calls: number,
  inFlight: number,
): Promise<{ cpu: Record<string, number[]>; sys: Record<string, number[]> }> {
  const names = Object.keys(ops);
  const cpu: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  const sys: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let round = 0; round < rounds; round++) {
    for (const n of rotation(names, round)) {
      const c0 = process.cpuUsage();
      await runBounded(calls, inFlight, ops[n]!);
      const c = process.cpuUsage(c0);
      cpu[n]!.push((c.user + c.system) / calls);
      sys[n]!.push(c.system / calls);
    }
  }
  return { cpu, sys };
}
