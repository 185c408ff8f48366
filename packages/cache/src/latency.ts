/** Upper bounds (seconds) of the command latency buckets: 0.5 ms to the 250 ms default deadline and past it. */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

/** Cumulative-free snapshot: counts[i] calls took at most buckets[i] s (and more than buckets[i-1]); the last slot is +Inf. */
export interface LatencySnapshot {
  buckets: readonly number[];
  counts: number[];
  count: number;
  sumSeconds: number;
}

/**
 * Client-side duration of the cache's Redis calls (sent to settled, timeouts included), in fixed buckets: one
 * clock read and a short scan per call, no allocation, no labels, so the hit path pays next to nothing for it.
 */
export class LatencyRecorder {
  private readonly bounds: Float64Array;
  private readonly counts: Float64Array;
  private sumMs = 0;

  constructor(buckets: readonly number[] = LATENCY_BUCKETS_SECONDS) {
    this.bounds = Float64Array.from(buckets, (s) => s * 1000);
    this.counts = new Float64Array(buckets.length + 1);
  }

  observe(ms: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && ms > (bounds[i] as number)) i++;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.sumMs += ms;
  }

  snapshot(): LatencySnapshot {
    const counts = Array.from(this.counts);
    return {
      buckets: Array.from(this.bounds, (ms) => ms / 1000),
      counts,
      count: counts.reduce((a, b) => a + b, 0),
      sumSeconds: this.sumMs / 1000,
    };
  }
}
