import { createHash, randomBytes } from 'node:crypto';
import { DelayedError, Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import { isCluster, scanEveryMaster } from '@aicache/cache';
import type { Principal } from '@aicache/auth';

export type RedisClient = Redis | Cluster;

/** What a service tunes (its config maps the JOBS_* variables here). */
export interface JobsSettings {
  /** Jobs one process runs at once. */
  concurrency: number;
  /** Tries of a job whose failure may pass (worker down, Redis blip); bad input is never tried again. */
  attempts: number;
  /** First retry delay; each further one doubles it. */
  backoffMs: number;
  /** Finished jobs are kept at most this long and this many (the older ones are removed first). */
  keepCompletedSeconds: number;
  keepCompletedCount: number;
  keepFailedSeconds: number;
  keepFailedCount: number;
  /** How often a process looks for jobs whose process died (their lock expired): they are handed to a live one. */
  stalledIntervalMs: number;
  /** How long a job's lock lasts without renewal (renewed every half of it while the job runs). */
  lockDurationMs: number;
  /** On close, how long running jobs may take to finish before they are left to another process. */
  closeGraceMs: number;
}

export const DEFAULT_SETTINGS: JobsSettings = {
  concurrency: 2,
  attempts: 5,
  backoffMs: 1000,
  keepCompletedSeconds: 86_400,
  keepCompletedCount: 1000,
  keepFailedSeconds: 7 * 86_400,
  keepFailedCount: 1000,
  stalledIntervalMs: 30_000,
  lockDurationMs: 30_000,
  closeGraceMs: 8000,
};

/**
 * The tenant of scheduled jobs. It cannot be a user's tenant (those start with a letter or digit), so a user's list
 * never shows them; admins read them with `?tenant=_system`.
 */
export const SYSTEM_TENANT = '_system';

/** Scheduled jobs kept after they finish, in their own queue (retention counts are per queue, not per kind). */
export const KEEP_SCHEDULED_COUNT = 200;

/** A scheduled kind's interval: one job per `everyMs` across every replica; 0 turns it off (its scheduler is removed). */
export interface Schedule {
  kind: string;
  everyMs: number;
  input?: unknown;
}

/** What a job's code sees: who it acts for, its input, and how it reports progress and learns of a cancel. */
export interface JobContext<I> {
  id: string;
  kind: string;
  tenant: string;
  /** The principal that started the job (for service tokens to peers); undefined with authentication off. */
  principal: Principal | undefined;
  input: I;
  /** 1 on the first try. */
  attempt: number;
  /** True on the last try a failure may have: what a job keeps for its next try can be let go when this one fails. */
  lastAttempt: boolean;
  /** The last progress saved (after a retry or a hand-over: where the previous run got to). */
  resumeFrom: number;
  progress(current: number, total: number): Promise<void>;
  /**
   * Throws JobCancelled when the job was cancelled, CredentialRevoked when the credential that started it no longer
   * stands (with principalLive): call it between batches.
   */
  checkCancelled(): Promise<void>;
  /**
   * Ends this run without using up a try: the job goes back to `delayed` for `ms` (its saved progress kept, so the
   * next run resumes from it) and its slot is free for other jobs meanwhile. For work that must wait, such as a
   * per-minute budget spent.
   */
  postpone(ms: number): Promise<never>;
}

export interface JobData<I = unknown> {
  tenant: string;
  principal?: Principal;
  input: I;
}

/** A job as a filtered list looks at it: from its hash, without its data or result. */
export interface JobBrief {
  id: string;
  tenant: string | undefined;
  kind: string;
  /** BullMQ's state, when asked for. */
  state?: string | undefined;
  failedReason?: string | undefined;
}

export interface Progress {
  current: number;
  total: number;
  percentage: number;
}

export const CANCELLED = 'cancelled';

/** Thrown by checkCancelled: the job fails for good with the reason 'cancelled'. */
export class JobCancelled extends UnrecoverableError {
  constructor() {
    super(CANCELLED);
  }
}

/** A job's input is wrong: it fails at once, with no retry. */
export class BadJobInput extends UnrecoverableError {}

/** The credential that started a job was revoked or expired, or its user removed: the job stops, with no retry. */
export class CredentialRevoked extends UnrecoverableError {
  constructor() {
    super('the credential that started this job was revoked or has expired, or its user was removed: retry it with a valid one');
  }
}

export type JobRunner = (ctx: JobContext<unknown>) => Promise<unknown>;

export class JobsRefusedError extends Error {
  readonly code = 'JOBS_REFUSED';
}

/** maxmemory_policy from INFO memory (CONFIG GET may be denied by an ACL; INFO rarely is). */
export async function evictionPolicy(redis: RedisClient): Promise<string | undefined> {
  const nodes = isCluster(redis) ? redis.nodes('master') : [redis];
  const policies = new Set<string>();
  for (const node of nodes) {
    const info = await node.info('memory');
    const m = /^maxmemory_policy:(\S+)/m.exec(info);
    if (m?.[1]) policies.add(m[1]);
  }
  if (policies.size === 0) return undefined;
  // On a Cluster every master must be noeviction: report the first that is not.
  return [...policies].find((p) => p !== 'noeviction') ?? 'noeviction';
}

/** Refuses to run jobs on a Redis that may evict keys: a queue whose keys are evicted loses or corrupts jobs. */
export async function assertNoEviction(redis: RedisClient): Promise<void> {
  const policy = await evictionPolicy(redis);
  if (policy !== 'noeviction') {
    throw new JobsRefusedError(
      `background jobs refused: the state Redis has maxmemory-policy ${policy ?? '(unknown: INFO memory gave none)'}; ` +
        'jobs need noeviction (an evicted queue key loses or corrupts jobs). Set maxmemory-policy noeviction on the state Redis.',
    );
  }
}

/** The job id for an idempotent submission: the same tenant, kind and key (or body) always give the same id. */
export function jobIdOf(tenant: string, kind: string, keyOrBody: string): string {
  return `${kind}-${createHash('sha256').update(`${tenant}\n${kind}\n${keyOrBody}`).digest('hex').slice(0, 40)}`;
}

/** JSON with object keys sorted, so two equal bodies hash the same whatever their key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Where a service's queue keeps its keys; a service may keep its jobs' own data beside them (`<prefix>:<name>:...`). */
export function queuePrefix(service: string): string {
  return `jobs:{${service}}`;
}

export interface JobsSweep {
  /** Tenant job lists looked at. */
  tenantLists: number;
  /** Ids removed from them: their job was gone. */
  staleIds: number;
  /** Cancel flags removed: their job had finished or was gone. */
  cancelFlags: number;
  complete: boolean;
}

/** A blocking-safe copy of the state connection for BullMQ (it needs commands that wait, never given up on). */
function duplicateFor(redis: RedisClient): RedisClient {
  if (isCluster(redis)) {
    const cluster = redis;
    return cluster.duplicate(undefined, { redisOptions: { ...cluster.options.redisOptions, maxRetriesPerRequest: null, commandTimeout: undefined } });
  }
  // No command timeout: the worker's BZPOPMIN waits for a job by design (the routes bound their own calls).
  return (redis as Redis).duplicate({ maxRetriesPerRequest: null, enableOfflineQueue: true, commandTimeout: undefined });
}

export interface JobQueueOptions {
  service: string;
  redis: RedisClient;
  settings: JobsSettings;
  runners: Record<string, JobRunner>;
  /** The scheduled kinds' code: with any, a second queue (`scheduled`) holds their jobs. */
  scheduledRunners?: Record<string, JobRunner>;
  /** false: this process only enqueues and reads (no worker). */
  work?: boolean;
  /** Asked before each batch of a job started by a principal: false stops the job for good (CredentialRevoked). */
  principalLive?: (principal: Principal) => Promise<boolean>;
  logger?: { info(o: object, m?: string): void; warn(o: object, m?: string): void; error(o: object, m?: string): void };
}

/** Jobs read at once when listing a tenant's jobs. */
export const LIST_PAGE = 100;

/** The deduplication id that holds an exclusive kind while one of its jobs waits or runs. */
const exclusiveId = (kind: string): string => `exclusive:${kind}`;

/**
 * KEYS[1] the kind's deduplication key, ARGV[1] the job to hold it, ARGV[2] the queue's key prefix: takes the key
 * unless a job that still exists holds it (a holder whose job is gone left a stale key, as BullMQ's own add treats it).
 */
const CLAIM_SCRIPT = `
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] and redis.call('EXISTS', ARGV[2] .. holder) == 1 then return holder end
redis.call('SET', KEYS[1], ARGV[1])
return false
`;
const RELEASE_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/** A job of an exclusive kind was submitted while another of the kind waits or runs. */
export class KindBusy extends Error {
  readonly statusCode = 409;
  constructor(
    readonly kind: string,
    readonly holder: string,
  ) {
    super(`a ${kind} job is already under way (${holder}); wait for it to finish or cancel it`);
  }
}

/**
 * One BullMQ queue per service on the state Redis, under the prefix `jobs:{<service>}` (the hash tag keeps every key
 * of the queue in one Cluster slot), with a worker that runs the service's job kinds. Per tenant, a sorted set of its
 * job ids (newest first) serves the list route; a cancel is a flag the running job reads between batches.
 *
 * Scheduled kinds (housekeeping) live in a second queue, `scheduled`, under the same prefix: BullMQ's retention trims
 * a queue's whole finished set, so a job every few minutes sharing the first queue would push users' jobs out of it.
 * Each scheduled kind has one job scheduler (its id is the kind), whatever the number of replicas that upsert it: a
 * tick is one delayed job with an id made of the scheduler and the tick's time, taken by one worker only.
 */
export class JobQueue {
  readonly prefix: string;
  readonly queue: Queue;
  readonly worker: Worker | undefined;
  readonly scheduled: Queue | undefined;
  readonly scheduledWorker: Worker | undefined;
  private readonly conns: RedisClient[] = [];
  private readonly plain: RedisClient;

  constructor(private readonly opts: JobQueueOptions) {
    this.prefix = queuePrefix(opts.service);
    const s = opts.settings;
    this.plain = this.own(duplicateFor(opts.redis));
    // skipMetasUpdate: a Queue writes its meta hash as soon as it connects, which would write to a Redis that the
    // eviction check is about to refuse (the scripts set what they need of it on the first add).
    this.queue = new Queue('jobs', {
      connection: this.plain as never,
      prefix: this.prefix,
      skipMetasUpdate: true,
      defaultJobOptions: {
        attempts: s.attempts,
        backoff: { type: 'exponential', delay: s.backoffMs },
        removeOnComplete: { age: s.keepCompletedSeconds, count: s.keepCompletedCount },
        removeOnFail: { age: s.keepFailedSeconds, count: s.keepFailedCount },
      },
    });
    this.queue.on('error', (err) => opts.logger?.warn({ err: { message: err.message } }, 'jobs: queue connection trouble'));
    if (opts.work !== false) {
      this.worker = new Worker('jobs', (job, token) => this.run(job, this.opts.runners, token), {
        connection: this.own(duplicateFor(opts.redis)) as never,
        prefix: this.prefix,
        concurrency: s.concurrency,
        stalledInterval: s.stalledIntervalMs,
        lockDuration: s.lockDurationMs,
        maxStalledCount: 2,
        autorun: false,
      });
      this.worker.on('error', (err) => opts.logger?.warn({ err: { message: err.message } }, 'jobs: worker connection trouble'));
      this.worker.on('failed', (job, err) =>
        opts.logger?.warn({ jobId: job?.id, kind: job?.name, attempts: job?.attemptsMade, err: { message: err.message } }, 'job failed'),
      );
      this.worker.on('stalled', (jobId) => opts.logger?.warn({ jobId }, 'job stalled (its process stopped): handed to another'));
    }
    if (opts.scheduledRunners && Object.keys(opts.scheduledRunners).length > 0) {
      this.scheduled = new Queue('scheduled', {
        connection: this.plain as never,
        prefix: this.prefix,
        skipMetasUpdate: true,
        defaultJobOptions: {
          // The next tick runs it again: a failed tick is not retried.
          attempts: 1,
          removeOnComplete: { age: s.keepCompletedSeconds, count: KEEP_SCHEDULED_COUNT },
          removeOnFail: { age: s.keepFailedSeconds, count: KEEP_SCHEDULED_COUNT },
        },
      });
      this.scheduled.on('error', (err) => opts.logger?.warn({ err: { message: err.message } }, 'jobs: scheduled queue connection trouble'));
      if (opts.work !== false) {
        this.scheduledWorker = new Worker('scheduled', (job, token) => this.run(job, opts.scheduledRunners!, token), {
          connection: this.own(duplicateFor(opts.redis)) as never,
          prefix: this.prefix,
          concurrency: 1,
          stalledInterval: s.stalledIntervalMs,
          lockDuration: s.lockDurationMs,
          maxStalledCount: 1,
          autorun: false,
        });
        this.scheduledWorker.on('error', (err) => opts.logger?.warn({ err: { message: err.message } }, 'jobs: scheduled worker connection trouble'));
        this.scheduledWorker.on('failed', (job, err) => opts.logger?.warn({ jobId: job?.id, kind: job?.name, err: { message: err.message } }, 'scheduled job failed'));
      }
    }
  }

  private own(c: RedisClient): RedisClient {
    this.conns.push(c);
    return c;
  }

  /** Starts taking jobs (after the boot checks). */
  start(): void {
    for (const worker of [this.worker, this.scheduledWorker]) {
      if (worker) void worker.run().catch((err: Error) => this.opts.logger?.error({ err: { message: err.message } }, 'jobs: worker stopped'));
    }
  }

  /**
   * Makes the queue's job schedulers match `schedules`: one per kind with an interval (created, or updated when the
   * interval changed), none for a kind at 0 nor for one no longer offered. Every replica calls it at boot; upserting
   * the same scheduler again keeps one scheduler and one pending tick.
   */
  async applySchedules(schedules: Schedule[]): Promise<{ active: string[]; removed: string[] }> {
    const queue = this.scheduled;
    if (!queue) return { active: [], removed: [] };
    const active: string[] = [];
    const removed: string[] = [];
    for (const s of schedules) {
      if (s.everyMs > 0) {
        await queue.upsertJobScheduler(s.kind, { every: s.everyMs }, { name: s.kind, data: { tenant: SYSTEM_TENANT, input: s.input ?? {} } satisfies JobData });
        active.push(s.kind);
      } else if (await queue.removeJobScheduler(s.kind)) {
        removed.push(s.kind);
      }
    }
    for (const existing of await queue.getJobSchedulers(0, 99)) {
      const id = existing.key;
      if (!active.includes(id) && !removed.includes(id) && (await queue.removeJobScheduler(id))) removed.push(id);
    }
    return { active, removed };
  }

  /** The schedulers in Redis: kind, interval and the next tick's time. */
  async schedulers(): Promise<Array<{ kind: string; everyMs: number | undefined; next: number | undefined }>> {
    if (!this.scheduled) return [];
    const all = await this.scheduled.getJobSchedulers(0, 99, true);
    return all.map((s) => ({ kind: s.key, everyMs: s.every ?? undefined, next: s.next ?? undefined }));
  }

  /** A scheduled kind's job now, besides its ticks (an admin's "run now"). */
  async runNow(kind: string, input: unknown = {}): Promise<Job> {
    if (!this.scheduled) throw new Error('no scheduled kinds in this service');
    const id = `${kind}-now-${Date.now()}-${randomBytes(3).toString('hex')}`;
    const job = await this.scheduled.add(kind, { tenant: SYSTEM_TENANT, input } satisfies JobData, { jobId: id });
    await this.index(SYSTEM_TENANT, id);
    return job;
  }

  private tenantKey(tenant: string): string {
    return `${this.prefix}:tenant:${tenant}`;
  }

  private cancelKey(id: string): string {
    return `${this.prefix}:cancel:${id}`;
  }

  /**
   * Adds a job, or answers the existing one with the same id (`created` false). `exclusive`: at most one job of the
   * kind waits or runs at once, decided by Redis in the same script that adds the job (BullMQ's deduplication, whose
   * key the job clears when it finishes or is removed), so two submissions at the same moment cannot both start one:
   * the one that loses throws KindBusy naming the job that holds the kind, and nothing is added.
   */
  async add(kind: string, id: string, data: JobData, opts: { exclusive?: boolean } = {}): Promise<{ job: Job; created: boolean }> {
    const existing = await this.queue.getJob(id);
    if (existing) return { job: existing, created: false };
    const job = await this.queue.add(kind, data, { jobId: id, ...(opts.exclusive ? { deduplication: { id: exclusiveId(kind) } } : {}) });
    if (job.id !== id) throw new KindBusy(kind, String(job.id));
    await this.index(data.tenant, id);
    return { job, created: true };
  }

  /**
   * Before a retry of a job of an exclusive kind: holds the kind for it, as its first add did, unless another job of
   * the kind holds it (that job's id is answered, and the retry must not run). A job added before its kind was
   * exclusive carries no claim BullMQ would clear when it finishes: its retry is checked by reading the unfinished
   * jobs instead.
   */
  async claimForRetry(job: Job): Promise<string | undefined> {
    const dedup = job.deduplicationId ?? job.opts.deduplication?.id;
    if (!dedup) return this.busyWith(job.name, String(job.id));
    const holder = (await this.plain.eval(CLAIM_SCRIPT, 1, this.queue.toKey(`de:${dedup}`), String(job.id), this.queue.toKey(''))) as string | null;
    return holder ?? undefined;
  }

  /** Gives back what claimForRetry took, when the retry did not happen (the failed job would hold the kind). */
  async releaseRetryClaim(job: Job): Promise<void> {
    const dedup = job.deduplicationId ?? job.opts.deduplication?.id;
    if (dedup) await this.plain.eval(RELEASE_SCRIPT, 1, this.queue.toKey(`de:${dedup}`), String(job.id));
  }

  /** Orders the jobs a process lists within one millisecond: the score is ms × 1000 + this, so they list as submitted. */
  private listSeq = 0;

  private async index(tenant: string, id: string): Promise<void> {
    // Exact as a double (ms × 1000 is below 2^53 for millennia); ties across processes stay in id order.
    this.listSeq = (this.listSeq + 1) % 1000;
    await this.plain.zadd(this.tenantKey(tenant), Date.now() * 1000 + this.listSeq, id);
    // Bounded: the list reaches back this far at most (finished jobs are removed by retention anyway).
    await this.plain.zremrangebyrank(this.tenantKey(tenant), 0, -10_001);
  }

  /** A job of either queue, whoever's it is (for the submission's duplicate check; routes use get). */
  async find(id: string): Promise<Job | undefined> {
    return (await this.queue.getJob(id)) ?? (this.scheduled ? await this.scheduled.getJob(id) : undefined) ?? undefined;
  }

  /** The queue that holds `job` (a scheduled kind's job lives in the second queue). */
  queueOf(job: Job): Queue {
    return job.queueName === 'scheduled' && this.scheduled ? this.scheduled : this.queue;
  }

  /** The tenant's job, or undefined for an unknown id and for another tenant's. */
  async get(tenant: string, id: string): Promise<Job | undefined> {
    const job = await this.find(id);
    if (!job || (job.data as JobData).tenant !== tenant) return undefined;
    return job;
  }

  /**
   * The tenant's jobs `[offset, offset + count)`, newest first, and how many it has: reads those jobs only. Ids whose
   * job is gone (removed by retention) are dropped from the tenant's list and the page read again.
   */
  async page(tenant: string, offset: number, count: number): Promise<{ total: number; jobs: Job[] }> {
    const key = this.tenantKey(tenant);
    for (let attempt = 0; ; attempt++) {
      const [ids, total] = await Promise.all([this.plain.zrevrange(key, offset, offset + count - 1), this.plain.zcard(key)]);
      const found = await Promise.all(ids.map((id) => this.find(id)));
      const gone = ids.filter((_, i) => (found[i]?.data as JobData | undefined)?.tenant !== tenant);
      if (gone.length === 0 || attempt === 2) {
        return { total: total - gone.length, jobs: found.filter((job): job is Job => (job?.data as JobData | undefined)?.tenant === tenant) };
      }
      await this.plain.zrem(key, ...gone);
    }
  }

  /**
   * The tenant's job ids newest first, with each job's kind and raw BullMQ state (with `withState`) and failure
   * reason, read from the job's hash without its data or result: what a filtered list picks from. Every id the tenant
   * has (its list keeps 10,000 at most), a page of reads in flight at a time; ids whose job is gone are dropped.
   */
  async briefs(tenant: string, withState: boolean): Promise<JobBrief[]> {
    const key = this.tenantKey(tenant);
    const ids = await this.plain.zrevrange(key, 0, -1);
    const out: JobBrief[] = [];
    const gone: string[] = [];
    for (let from = 0; from < ids.length; from += LIST_PAGE) {
      const page = ids.slice(from, from + LIST_PAGE);
      const read = await Promise.all(page.map((id) => this.brief(id, withState)));
      read.forEach((b, i) => {
        if (b?.tenant === tenant) out.push(b);
        else gone.push(page[i]!);
      });
    }
    if (gone.length > 0) await this.plain.zrem(key, ...gone);
    return out;
  }

  private async brief(id: string, withState: boolean): Promise<JobBrief | undefined> {
    for (const queue of this.scheduled ? [this.queue, this.scheduled] : [this.queue]) {
      const [name, data, failedReason] = await this.plain.hmget(queue.toKey(id), 'name', 'data', 'failedReason');
      if (!name) continue;
      let tenant: string | undefined;
      try {
        tenant = (JSON.parse(data ?? '{}') as Partial<JobData>).tenant;
      } catch {
        tenant = undefined;
      }
      return { id, tenant, kind: name, state: withState ? await queue.getJobState(id) : undefined, failedReason: failedReason ?? undefined };
    }
    return undefined;
  }

  /**
   * The job's state and saved progress only, undefined when it is gone. A whole read of a job carries its input
   * (megabytes for a large ingest), too much to repeat every tick of a client following it.
   */
  async peek(id: string): Promise<{ state: string; progress: unknown } | undefined> {
    const [state, progress] = await Promise.all([this.queue.getJobState(id), this.plain.hget(this.queue.toKey(id), 'progress')]);
    if (state === 'unknown') return undefined;
    return { state, progress: progress === null ? undefined : (JSON.parse(progress) as unknown) };
  }

  /** A job of `kind` other than `except` that waits or runs, of any tenant: its id, or undefined. */
  async busyWith(kind: string, except: string): Promise<string | undefined> {
    return (await this.unfinished(kind)).find((j) => j.id !== except)?.id;
  }

  /** Jobs of `kind` that wait, are delayed (a retry) or run, of every tenant. */
  async unfinished(kind: string): Promise<Job[]> {
    const jobs = await this.queue.getJobs(['active', 'waiting', 'delayed', 'prioritized', 'waiting-children']);
    return jobs.filter((j) => j && j.name === kind);
  }

  async requestCancel(id: string): Promise<void> {
    await this.plain.set(this.cancelKey(id), '1', 'EX', 7 * 86_400);
  }

  async clearCancel(id: string): Promise<void> {
    await this.plain.del(this.cancelKey(id));
  }

  async isCancelled(id: string): Promise<boolean> {
    return (await this.plain.exists(this.cancelKey(id))) === 1;
  }

  /**
   * Removes what the queue leaves behind: ids in the tenants' job lists whose job retention (or a cancel) removed,
   * and cancel flags of jobs that finished or are gone. Bounded: at most `maxKeys` keys looked at per kind of
   * leftover, in pages of `batch`; `complete` is false when a run stopped at the bound (the next run goes on).
   */
  async sweep(opts: { maxKeys?: number; batch?: number } = {}): Promise<JobsSweep> {
    const maxKeys = opts.maxKeys ?? 10_000;
    const batch = opts.batch ?? 200;
    const out: JobsSweep = { tenantLists: 0, staleIds: 0, cancelFlags: 0, complete: true };
    const exists = async (ids: string[]): Promise<boolean[]> => {
      const tx = this.plain.pipeline();
      for (const id of ids) tx.exists(`${this.prefix}:jobs:${id}`, `${this.prefix}:scheduled:${id}`);
      return ((await tx.exec()) ?? []).map(([err, n]) => err !== null || Number(n) > 0);
    };

    let seen = 0;
    for await (const key of scanEveryMaster(this.plain, `${this.prefix}:tenant:*`, batch)) {
      if (seen >= maxKeys) {
        out.complete = false;
        break;
      }
      out.tenantLists++;
      // A tenant's list is capped at 10,000 ids: read in pages, oldest first (those are the ones retention removed).
      for (let start = 0; ; start += batch) {
        if (seen >= maxKeys) {
          out.complete = false;
          break;
        }
        const ids = await this.plain.zrange(key, String(start), String(start + batch - 1));
        if (ids.length === 0) break;
        seen += ids.length;
        const live = await exists(ids);
        const gone = ids.filter((_, i) => !live[i]);
        if (gone.length > 0) {
          out.staleIds += await this.plain.zrem(key, ...gone);
          start -= gone.length;
        }
        if (ids.length < batch) break;
      }
    }

    let flags = 0;
    for await (const key of scanEveryMaster(this.plain, `${this.prefix}:cancel:*`, batch)) {
      if (flags++ >= maxKeys) {
        out.complete = false;
        break;
      }
      const id = key.slice(`${this.prefix}:cancel:`.length);
      const state = await this.queue.getJobState(id);
      // A flag matters only while its job may still run: waiting, delayed or active (a retry clears it itself).
      if (state === 'unknown' || state === 'completed' || state === 'failed') out.cancelFlags += await this.plain.del(key);
    }
    return out;
  }

  async forget(tenant: string, id: string): Promise<void> {
    await this.plain.zrem(this.tenantKey(tenant), id);
    await this.clearCancel(id);
  }

  private async run(job: Job, runners: Record<string, JobRunner>, token: string | undefined): Promise<unknown> {
    const runner = runners[job.name];
    if (!runner) throw new BadJobInput(`no job kind '${job.name}' in this service`);
    const data = job.data as JobData;
    const saved = job.progress as Partial<Progress> | number | undefined;
    const ctx: JobContext<unknown> = {
      id: job.id as string,
      kind: job.name,
      tenant: data.tenant,
      principal: data.principal,
      input: data.input,
      attempt: job.attemptsMade + 1,
      lastAttempt: job.attemptsMade + 1 >= (job.opts.attempts ?? 1),
      resumeFrom: typeof saved === 'object' && saved && typeof saved.current === 'number' ? saved.current : 0,
      progress: (current, total) =>
        job.updateProgress({ current, total, percentage: total > 0 ? Math.round((current / total) * 10_000) / 100 : 100 }),
      checkCancelled: async () => {
        const live = data.principal && this.opts.principalLive;
        const [cancelled, allowed] = await Promise.all([this.isCancelled(job.id as string), live ? live(data.principal!) : true]);
        if (cancelled) throw new JobCancelled();
        if (!allowed) throw new CredentialRevoked();
      },
      postpone: async (ms) => {
        await job.moveToDelayed(Date.now() + Math.max(1, Math.ceil(ms)), token);
        throw new DelayedError();
      },
    };
    await ctx.checkCancelled();
    // A scheduler's tick is added by BullMQ, not by add(): it enters the system tenant's list when it starts.
    if (runners !== this.opts.runners && job.attemptsMade === 0 && data.tenant === SYSTEM_TENANT) await this.index(SYSTEM_TENANT, job.id as string);
    return runner(ctx);
  }

  /**
   * Stops taking jobs and waits for the running ones to finish (a job still running when the process is killed
   * is handed to another process by stalled-job detection), then closes the connections.
   */
  async close(graceMs = this.opts.settings.closeGraceMs): Promise<void> {
    const within = async (p: Promise<unknown>, ms: number): Promise<boolean> => {
      let timer: NodeJS.Timeout | undefined;
      const done = await Promise.race([
        p.then(
          () => true,
          () => true,
        ),
        new Promise<boolean>((r) => {
          timer = setTimeout(() => r(false), ms);
        }),
      ]);
      clearTimeout(timer);
      return done;
    };
    const workers = [this.worker, this.scheduledWorker].filter((w): w is Worker => w !== undefined);
    const closing = workers.map((w) => w.close());
    if (workers.length > 0 && !(await within(Promise.all(closing), graceMs))) {
      // Past the grace (or Redis away): the running jobs are left to stalled-job detection in another process.
      this.opts.logger?.warn({ graceMs }, 'jobs: running jobs did not finish within the close grace; they will be handed over');
      for (const w of workers) void w.close(true).catch(() => undefined);
    }
    await within(Promise.all([this.queue.close(), this.scheduled?.close()]), 1000);
    for (const c of this.conns) {
      if (!(await within(c.quit(), 1000))) c.disconnect();
    }
  }
}
