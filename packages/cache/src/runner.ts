import { performance } from 'node:perf_hooks';
import { Command } from 'ioredis';
import { CircuitBreaker, type BreakerOptions } from './breaker.js';
import { serverClockOffset, type RedisClient } from './connection.js';
import { CacheTimeoutError, CircuitOpenError } from './errors.js';
import { LatencyRecorder } from './latency.js';

// `performance` imported rather than read from globalThis, where Node defines it as a lazy accessor: each read of the
// global ran that accessor (~250 instructions in callgrind, twice per call on the hit path).

/** A TIME round trip at most this long gives an offset good to a few ms: no need to measure again. */
const TIGHT_CLOCK_RTT_MS = 10;

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
  /** Duration of every call that went out (not the ones the circuit refused), for /metrics. */
  readonly latency = new LatencyRecorder();
  /** serverTime - localTime in ms, measured with TIME on every (re)connect. */
  private clockOffset = 0;
  /**
   * Round trip of the TIME that gave clockOffset: the offset is off by at most half of it (the server read its clock
   * somewhere between send and reply). A TIME answered at a busy moment (a boot loading a model, a GC) can take a
   * second, so the offset may be half a second early, which without a margin would drop every write as late.
   */
  private clockRtt = Number.POSITIVE_INFINITY;
  private calibratedAt = 0;
  private calibrated = false;
  private calibrating: Promise<void> | undefined;
  private readyWait: Promise<void> | undefined;
  private readonly defaultDeadlines = new DeadlineQueue();
  /** What getBuffer builds its GETs with (as the client's own getBuffer would); undefined: getBuffer goes through the client. */
  private readonly getOptions: { replyEncoding: null; keyPrefix?: string } | undefined;
  private readonly otherDeadlines = new Map<number, DeadlineQueue>();
  private readonly onReady = (): void => {
    // A new connection, perhaps to another server: its first measure is taken whatever its round trip.
    this.clockRtt = Number.POSITIVE_INFINITY;
    void this.calibrate();
  };

  constructor(
    readonly client: RedisClient,
    readonly timeoutMs: number,
    breaker: BreakerOptions = {},
  ) {
    this.breaker = new CircuitBreaker(breaker);
    const options = client.options as { keyPrefix?: string; enableAutoPipelining?: boolean; showFriendlyErrorStack?: boolean };
    this.getOptions =
      options.enableAutoPipelining === true || options.showFriendlyErrorStack === true
        ? undefined
        : Object.freeze({ replyEncoding: null, ...(options.keyPrefix ? { keyPrefix: options.keyPrefix } : {}) });
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
    if (this.calibrated) {
      const now = Date.now();
      // A loose measure is bettered, at most once a second, until one is tight; meanwhile its error is the margin.
      if (this.clockRtt > TIGHT_CLOCK_RTT_MS && now - this.calibratedAt >= 1000) void this.calibrate();
      return Math.floor(now + this.clockOffset + this.timeoutMs + Math.ceil(this.clockRtt / 2));
    }
    // The first TIME failed or is still out (a Cluster node connects on its first command, and a loaded machine
    // may take longer than the command timeout): ask again rather than write without a deadline until a reconnect.
    void this.calibrate();
    return 0;
  }

  /** True once the server clock's offset is known (write deadlines are then checked). */
  get clockKnown(): boolean {
    return this.calibrated;
  }

  calibrate(): Promise<void> {
    this.calibrating ??= this.measureClock().finally(() => (this.calibrating = undefined));
    return this.calibrating;
  }

  private async measureClock(): Promise<void> {
    try {
      const t0 = Date.now();
      // Off the request path: the bound of a bulk call, not of one request's command.
      const reply = (await this.bounded((c) => c.time(), Math.max(this.timeoutMs, 2000), undefined)) as unknown as [string | number, string | number];
      const t1 = Date.now();
      this.calibratedAt = t1;
      // The tighter measure wins: a later one taken at a busier moment would only widen the error.
      if (t1 - t0 <= this.clockRtt) {
        this.clockOffset = serverClockOffset(reply, t0, t1);
        this.clockRtt = t1 - t0;
      }
      this.calibrated = true;
    } catch {
      // Keep the previous offset; the next write or reconnect tries again.
    }
  }

  run<T>(op: (client: RedisClient) => Promise<T>, timeoutMs = this.timeoutMs): Promise<T> {
    if (!this.breaker.tryAcquire()) return Promise.reject(new CircuitOpenError());
    return this.bounded(op, timeoutMs, this.breaker);
  }

  /**
   * A cache fill: like run(), but refused at once while the last call failed less than a cooldown ago. A fill
   * only saves later work, so it must not make a request wait out a second timeout on a Redis that has just
   * missed one (a read timed out, then the write of the loaded value would too).
   */
  fill<T>(op: (client: RedisClient) => Promise<T>, timeoutMs = this.timeoutMs): Promise<T> {
    if (this.breaker.failedRecently()) return Promise.reject(new CircuitOpenError());
    return this.run(op, timeoutMs);
  }

  /**
   * GET of one key answered as a Buffer, the hit path's read: run((c) => c.getBuffer(key)) with nothing around the
   * command but its deadline. The command is made here and handed to the client as getBuffer would, and its own
   * promise is the one awaited: no promise of ours resolved from it (resolving a promise with a Buffer looks up
   * `then` along the Buffer's prototype chain, the slowest step of a promise layer), no callbacks made per call. The
   * caller awaits `reply`, then hands the call to settle() with the error, if any. A call past its deadline rejects
   * that promise. While not connected (or on a client that pipelines automatically or wants friendly error stacks,
   * which its getBuffer handles) it is run() as before, already settled.
   */
  sendGet(key: string): SentGet {
    const client = this.client;
    if (client.status !== 'ready' || this.getOptions === undefined) return { reply: this.run((c) => c.getBuffer(key)), done: true };
    if (!this.breaker.tryAcquire()) return { reply: Promise.reject(new CircuitOpenError()), done: true };
    const command = new Command('get', [key], this.getOptions);
    const call = new SentCommand(this, command, command.promise as Promise<Buffer | null>, performance.now());
    this.defaultDeadlines.add(call);
    client.sendCommand(command);
    return call;
  }

  /** sendGet's call answered (`err` undefined) or failed: counted as bounded() counts its calls, unless already done. */
  settle(get: SentGet, err: unknown): void {
    if (get.done) return;
    const call = get as SentCommand;
    this.answered(call, this.defaultDeadlines, call.started, this.breaker, err === undefined || isReplyError(err));
  }

  /**
   * A call's answer (`serverAnswered`: a reply, an error reply included) or failure came: it leaves its deadline
   * queue, its time is recorded, and the circuit told. False, counting nothing, when it was done already (expired).
   */
  private answered(call: PendingCall, deadlines: DeadlineQueue, started: number, breaker: CircuitBreaker | undefined, serverAnswered: boolean): boolean {
    if (call.done) return false;
    call.done = true;
    deadlines.settled();
    this.latency.observe(performance.now() - started);
    if (serverAnswered) breaker?.success();
    else breaker?.failure();
    return true;
  }

  /** A call past its deadline: recorded at the bound, and a failure for the circuit. */
  private timedOut(timeoutMs: number, breaker: CircuitBreaker | undefined): void {
    this.latency.observe(timeoutMs);
    breaker?.failure();
  }

  /** sendGet, awaited and settled. */
  async getBuffer(key: string): Promise<Buffer | null> {
    const get = this.sendGet(key);
    let reply: Buffer | null;
    try {
      reply = await get.reply;
    } catch (err) {
      this.settle(get, err);
      throw err;
    }
    this.settle(get, undefined);
    return reply;
  }

  /** Past its deadline: counted as a failure, and the command's promise rejected (a later reply is ignored). */
  expireCommand(call: SentCommand): void {
    this.timedOut(this.timeoutMs, this.breaker);
    call.command.reject(new CacheTimeoutError(this.timeoutMs));
  }

  /** One bounded call that neither consults nor moves the circuit (health checks). */
  probe<T>(op: (client: RedisClient) => Promise<T>, timeoutMs = this.timeoutMs): Promise<T> {
    return this.bounded(op, timeoutMs, undefined);
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

  /**
   * Runs `op`, rejecting with a timeout once `timeoutMs` passed, and reports the outcome to `breaker` (a Redis error
   * reply counts as a success: the server answered). The request path's hot spot: one promise and no timer per call.
   */
  private bounded<T>(op: (client: RedisClient) => Promise<T>, timeoutMs: number, breaker: CircuitBreaker | undefined): Promise<T> {
    const deadlines = timeoutMs === this.timeoutMs ? this.defaultDeadlines : this.deadlinesFor(timeoutMs);
    return new Promise<T>((resolve, reject) => {
      const started = performance.now();
      const call: PendingCall = {
        deadline: started + timeoutMs,
        done: false,
        expire: () => {
          this.timedOut(timeoutMs, breaker);
          reject(new CacheTimeoutError(timeoutMs));
        },
      };
      deadlines.add(call);
      const ok = (v: T): void => {
        if (this.answered(call, deadlines, started, breaker, true)) resolve(v);
      };
      const fail = (e: unknown): void => {
        if (this.answered(call, deadlines, started, breaker, isReplyError(e))) reject(e);
      };
      const wait = this.whenConnecting();
      if (wait) {
        // Past its deadline while waiting, the call is never sent.
        wait.then(() => (call.done ? undefined : op(this.client))).then(ok as (v: T | undefined) => void, fail);
        return;
      }
      let sent: Promise<T>;
      try {
        sent = op(this.client);
      } catch (e) {
        fail(e);
        return;
      }
      sent.then(ok, fail);
    });
  }

  private deadlinesFor(timeoutMs: number): DeadlineQueue {
    let q = this.otherDeadlines.get(timeoutMs);
    if (!q) {
      q = new DeadlineQueue();
      this.otherDeadlines.set(timeoutMs, q);
    }
    return q;
  }
}

/** A GET sent by RedisRunner.sendGet: await `reply`, then RedisRunner.settle it. */
export interface SentGet {
  readonly reply: Promise<Buffer | null>;
  /** Settled already: by its deadline, by settle(), or counted elsewhere (the run() fallback). */
  readonly done: boolean;
}

/** A command sendGet sent, waiting in the default deadline queue. */
class SentCommand implements PendingCall, SentGet {
  readonly deadline: number;
  done = false;
  constructor(
    private readonly runner: RedisRunner,
    readonly command: Command,
    readonly reply: Promise<Buffer | null>,
    /** performance.now() when sent. */
    readonly started: number,
  ) {
    this.deadline = started + runner.timeoutMs;
  }

  expire(): void {
    this.runner.expireCommand(this);
  }
}

interface PendingCall {
  /** performance.now() ms: monotonic, unlike the wall clock. */
  readonly deadline: number;
  /** Settled, by its reply or by its deadline. */
  done: boolean;
  expire(): void;
}

/**
 * The pending calls that share one timeout, oldest first: their deadlines only grow, so one timer, set for the oldest
 * call still waiting, bounds them all. Replies on a connection come in order, so a settled call is nearly always the
 * oldest and leaves the queue at once; the timer fires at most once per timeout under steady load, where a timer per
 * call would be made and cleared on every request.
 */
class DeadlineQueue {
  /** Below `head`: calls already gone (undefined). */
  private calls: Array<PendingCall | undefined> = [];
  private head = 0;
  private timer: NodeJS.Timeout | undefined;

  add(call: PendingCall): void {
    this.calls.push(call);
    if (this.timer === undefined) this.arm(call.deadline);
  }

  /**
   * Some call settled: drop the settled ones at the head, and let go of them at once (a settled call still held here
   * would keep its promise and callbacks alive through the next young-generation GCs, and get them promoted).
   */
  settled(): void {
    const calls = this.calls;
    let head = this.head;
    while (head < calls.length && (calls[head] as PendingCall).done) calls[head++] = undefined;
    this.head = head;
    this.compact();
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    const now = performance.now();
    const calls = this.calls;
    while (this.head < calls.length) {
      const call = calls[this.head] as PendingCall;
      if (!call.done) {
        if (call.deadline > now) break;
        call.done = true;
        call.expire();
      }
      calls[this.head++] = undefined;
    }
    this.compact();
    const next = this.calls[this.head];
    if (next) this.arm(next.deadline);
  };

  private arm(deadline: number): void {
    // Unref: a call in flight keeps the process alive through its socket, never through this timer.
    this.timer = setTimeout(this.fire, Math.max(0, Math.ceil(deadline - performance.now()))).unref();
  }

  private compact(): void {
    if (this.head === this.calls.length) {
      this.calls.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.calls.length) {
      this.calls = this.calls.slice(this.head);
      this.head = 0;
    }
  }
}
