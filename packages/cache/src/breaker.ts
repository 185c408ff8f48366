export type CircuitState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  /** Consecutive failures that open the circuit. Default 5. */
  failureThreshold?: number;
  /** How long the circuit stays open before one probe is let through. Default 1000 ms. */
  cooldownMs?: number;
}

/**
 * Consecutive-failure circuit breaker. Open: every call is refused at once (a miss for the caller).
 * After the cooldown one probe goes through (half-open); its success closes the circuit, its failure reopens it.
 */
export class CircuitBreaker {
  readonly failureThreshold: number;
  readonly cooldownMs: number;
  private failures = 0;
  private lastFailureAt = 0;
  private openedAt = 0;
  private opened = false;
  private probing = false;

  constructor(opts: BreakerOptions = {}) {
    this.failureThreshold = Math.max(1, opts.failureThreshold ?? 5);
    this.cooldownMs = Math.max(0, opts.cooldownMs ?? 1000);
  }

  get state(): CircuitState {
    if (!this.opened) return 'closed';
    return Date.now() - this.openedAt >= this.cooldownMs ? 'half-open' : 'open';
  }

  /** May a call go out now? In half-open, answers true once (the probe) until that probe reports back. */
  tryAcquire(): boolean {
    const state = this.state;
    if (state === 'closed') return true;
    if (state === 'open' || this.probing) return false;
    this.probing = true;
    return true;
  }

  /** The last call failed less than a cooldown ago (whatever the circuit's state). */
  failedRecently(now = Date.now()): boolean {
    return this.failures > 0 && now - this.lastFailureAt < this.cooldownMs;
  }

  success(): void {
    this.failures = 0;
    this.opened = false;
    this.probing = false;
  }

  failure(): void {
    this.failures++;
    this.lastFailureAt = Date.now();
    if (this.opened || this.failures >= this.failureThreshold) {
      this.opened = true;
      this.openedAt = Date.now();
    }
    this.probing = false;
  }
}
