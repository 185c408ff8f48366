/**
 * Work running per key in this process (loads, background refreshes), so concurrent callers share one run.
 * An invalidation detaches the runs of the keys it removes: they go on for the callers that already share them,
 * but a caller that comes after the invalidation starts a run of its own instead of joining one that may answer
 * the value from before it.
 */
export class Flights<T> {
  private readonly joinable = new Map<string, Promise<T>>();
  private readonly running = new Set<Promise<T>>();

  get(key: string): Promise<T> | undefined {
    // Nearly always empty on the hit path: no need to hash the key then.
    return this.joinable.size === 0 ? undefined : this.joinable.get(key);
  }

  has(key: string): boolean {
    return this.joinable.has(key);
  }

  /** Starts `run` under `key`; it stops being joinable when it settles or is detached. */
  start(key: string, run: () => Promise<T>): Promise<T> {
    const flight: Promise<T> = run().finally(() => {
      this.running.delete(flight);
      if (this.joinable.get(key) === flight) this.joinable.delete(key);
    });
    this.joinable.set(key, flight);
    this.running.add(flight);
    return flight;
  }

  /** These keys' runs (every run when `keys` is undefined) can no longer be joined. */
  detach(keys?: readonly string[]): void {
    if (keys === undefined) this.joinable.clear();
    else for (const k of keys) this.joinable.delete(k);
  }

  /** Every run not yet settled, detached ones included. */
  pending(): Promise<T>[] {
    return [...this.running];
  }
}
