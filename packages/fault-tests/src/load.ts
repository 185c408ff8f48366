import { performance } from 'node:perf_hooks';

/** One request of a load run; times are performance.now() milliseconds. */
export interface Sample {
  startedAt: number;
  endedAt: number;
  ms: number;
  /** HTTP status, 0 when the request failed without one (connection error, client timeout). */
  status: number;
  /** The response's x-cache header (hit | miss | partial), when it had one. */
  cache: string | undefined;
  error?: string;
}

export interface Outcome {
  status: number;
  cache?: string | undefined;
}

export interface LoadOptions {
  /** Concurrent loops, each sending its next request when the previous one finished. */
  concurrency: number;
  /** Sends request number `n` (counted over all loops) and answers its status and x-cache header. */
  send: (n: number) => Promise<Outcome>;
}

/** A steady, bounded, closed-loop load: `concurrency` requests in flight until stop(). */
export class Load {
  readonly samples: Sample[] = [];
  private running = false;
  private loops: Promise<void>[] = [];
  private counter = 0;
  private readonly listeners = new Set<(s: Sample) => void>();

  constructor(private readonly opts: LoadOptions) {}

  start(): this {
    if (this.running) return this;
    this.running = true;
    this.loops = Array.from({ length: this.opts.concurrency }, () => this.loop());
    return this;
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  /** Resolves with the first sample (from now on) that satisfies `pred`, or undefined after `timeoutMs` (a hang detector). */
  waitFor(pred: (s: Sample) => boolean, timeoutMs: number): Promise<Sample | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.listeners.delete(listener);
        resolve(undefined);
      }, timeoutMs);
      const listener = (s: Sample): void => {
        if (!pred(s)) return;
        clearTimeout(timer);
        this.listeners.delete(listener);
        resolve(s);
      };
      this.listeners.add(listener);
    });
  }

  private async loop(): Promise<void> {
    while (this.running) {
      const n = this.counter++;
      const startedAt = performance.now();
      let sample: Sample;
      try {
        const out = await this.opts.send(n);
        const endedAt = performance.now();
        sample = { startedAt, endedAt, ms: endedAt - startedAt, status: out.status, cache: out.cache };
      } catch (err) {
        const endedAt = performance.now();
        sample = { startedAt, endedAt, ms: endedAt - startedAt, status: 0, cache: undefined, error: (err as Error).message };
      }
      this.samples.push(sample);
      for (const l of [...this.listeners]) l(sample);
    }
  }
}

export const isFailure = (s: Sample): boolean => s.status < 200 || s.status > 299;

/** Samples in flight at any moment of [from, to]. */
export function overlapping(samples: Sample[], from: number, to: number): Sample[] {
  return samples.filter((s) => s.startedAt <= to && s.endedAt >= from);
}

export function percentile(values: number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? null;
}

export const round = (n: number | null | undefined, digits = 1): number | null =>
  n === null || n === undefined ? null : Math.round(n * 10 ** digits) / 10 ** digits;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export const now = (): number => performance.now();
