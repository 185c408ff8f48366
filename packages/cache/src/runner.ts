import type { Redis } from 'ioredis';
import { CircuitBreaker, type BreakerOptions } from './breaker.js';
import { CacheTimeoutError, CircuitOpenError } from './errors.js';

/** A Redis error reply (WRONGTYPE, NOSCRIPT...): the server is alive, so it does not count against the circuit. */
function isReplyError(err: unknown): boolean {
  return (err as Error)?.name === 'ReplyError';
}

/**
 * Runs every Redis call of the cache: refused at once while the circuit is open, bounded by our own timer
 * (so a black-holed or paused server cannot hold a call, whatever client options the user chose), and
 * counted by the breaker. Callers turn a rejection into a miss.
 */
export class RedisRunner {
  readonly breaker: CircuitBreaker;
  /** serverTime - localTime in ms, measured with TIME on every (re)connect. */
  private clockOffset = 0;
  private calibrated = false;
  private readyWait: Promise<void> | undefined;
  private readonly onReady = (): void => {
    void this.calibrate();
  };

  constructor(
    readonly client: Redis,
    readonly timeoutMs: number,
    breaker: BreakerOptions = {},
  ) {
    this.breaker = new CircuitBreaker(breaker);
    client.on('ready', this.onReady);
    if (client.status === 'ready') void this.calibrate();
  }

  detach(): void {
    this.client.off('ready', this.onReady);
  }

  /**
   * Server-clock deadline (epoch ms) sent with writes: past it the write script drops the write. 0 (no check)
   * until the clock offset is known, since a guessed offset could drop every write.
   */
  writeDeadline(): number {
    return this.calibrated ? Math.floor(Date.now() + this.clockOffset + this.timeoutMs) : 0;
  }

  async calibrate(): Promise<void> {
    try {
      const t0 = Date.now();
      const reply = (await this.bounded((c) => c.time(), this.timeoutMs)) as unknown as [string | number, string | number];
      const t1 = Date.now();
      const serverMs = Number(reply[0]) * 1000 + Math.floor(Number(reply[1]) / 1000);
      this.clockOffset = serverMs - (t0 + t1) / 2;
      this.calibrated = true;
    } catch {
      // Keep the previous offset; a later reconnect tries again.
    }
  }

  async run<T>(op: (client: Redis) => Promise<T>, timeoutMs = this.timeoutMs): Promise<T> {
    if (!this.breaker.tryAcquire()) throw new CircuitOpenError();
    try {
      const result = await this.bounded(op, timeoutMs);
      this.breaker.success();
      return result;
    } catch (err) {
      if (isReplyError(err)) this.breaker.success();
      else this.breaker.failure();
      throw err;
    }
  }

  /**
   * A cache fill: like run(), but refused at once while the last call failed less than a cooldown ago. A fill
   * only saves later work, so it must not make a request wait out a second timeout on a Redis that has just
   * missed one (a read timed out, then the write of the loaded value would too).
   */
  fill<T>(op: (client: Redis) => Promise<T>, timeoutMs = this.timeoutMs): Promise<T> {
    if (this.breaker.failedRecently()) return Promise.reject(new CircuitOpenError());
    return this.run(op, timeoutMs);
  }

  /** One bounded call that neither consults nor moves the circuit (health checks). */
  probe<T>(op: (client: Redis) => Promise<T>, timeoutMs = this.timeoutMs): Promise<T> {
    return this.bounded(op, timeoutMs);
  }

  /** Waits for a connection being made right now (boot, reconnect in progress); otherwise lets the command fail fast. */
  private whenConnecting(): Promise<void> | undefined {
    const status = this.client.status;
    if (status !== 'connecting' && status !== 'connect') return undefined;
    this.readyWait ??= new Promise<void>((resolve) => {
      const done = (): void => {
        this.client.off('ready', done);
        this.client.off('close', done);
        this.readyWait = undefined;
        resolve();
      };
      this.client.once('ready', done);
      this.client.once('close', done);
    });
    return this.readyWait;
  }

  private bounded<T>(op: (client: Redis) => Promise<T>, timeoutMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        settled = true;
        reject(new CacheTimeoutError(timeoutMs));
      }, timeoutMs);
      const start = async (): Promise<T> => {
        const wait = this.whenConnecting();
        if (wait) await wait;
        if (settled) throw new CacheTimeoutError(timeoutMs);
        return op(this.client);
      };
      start().then(
        (v) => {
          clearTimeout(timer);
          if (!settled) resolve(v);
        },
        (e: unknown) => {
          clearTimeout(timer);
          if (!settled) reject(e);
        },
      );
    });
  }
}
