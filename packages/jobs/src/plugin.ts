import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static, type TSchema } from 'typebox';
import type { Job, Queue } from 'bullmq';
import { allows, Forbidden, tenantOf, type Principal, type Scope } from '@aicache/auth';
import { errorResponses, errors, StateUnavailable } from '@aicache/service-kit';
import {
  assertNoEviction,
  canonicalJson,
  CANCELLED,
  jobIdOf,
  JobQueue,
  JobsRefusedError,
  KindBusy,
  type JobContext,
  type JobData,
  type JobsSettings,
  type Progress,
  type RedisClient,
  SYSTEM_TENANT,
} from './queue.js';

/** One kind of job a service offers: its start route's body and the code that runs it. */
export interface JobKind<I = unknown> {
  name: string;
  summary: string;
  description: string;
  body: TSchema;
  bodyLimit?: number;
  /** The least scope a credential needs to start it (default: write, as for any POST). */
  scope?: Scope;
  /**
   * At most one job of this kind waits or runs at once, whatever the tenant: starting another answers 409 (the same
   * body or Idempotency-Key still answers the job already started), and so does retrying a failed one meanwhile.
   * Redis decides it in the script that adds the job, so submissions racing each other on any replicas cannot both
   * start one.
   */
  exclusive?: boolean;
  /**
   * Turns the validated body into the job's input at submission (e.g. fixing ids so a re-run writes the same
   * records, or storing a large input beside the job so that reading the job stays cheap); throw a 4xx error for
   * input the schema cannot judge. Not called when the job already exists.
   */
  prepare?(body: unknown, request: FastifyRequest, job: { id: string; tenant: string }): I | Promise<I>;
  /**
   * Undoes what prepare stored, for a job that will never run: it turned out to exist already (two equal
   * submissions at once), or it was cancelled before it started.
   */
  discard?(input: I): Promise<void>;
  run(ctx: JobContext<I>): Promise<unknown>;
}

/**
 * A kind that runs on a schedule rather than on a request: one job per `everyMs` across every replica, acting for
 * the system tenant (SYSTEM_TENANT) with no principal. 0 turns it off and removes its scheduler.
 */
export interface ScheduledKind<I = unknown> {
  name: string;
  summary: string;
  everyMs: number;
  input?: I;
  run(ctx: JobContext<I>): Promise<unknown>;
}

/** What a service's own routes about its jobs (e.g. reading a large result) share with the job routes. */
export interface JobRouteHelpers {
  /** The request tenant's job (404 for an unknown id and for another tenant's; 503 when jobs are refused or Redis does not answer). */
  mine(request: FastifyRequest, id: string): Promise<Job>;
  /** Runs a Redis call within the routes' bound: 503 past it or on a failure without a status. */
  bounded<T>(what: string, fn: () => Promise<T>): Promise<T>;
}

export interface JobsPluginOptions {
  service: string;
  /** The state Redis (BullMQ gets its own copies of the connection). */
  redis: RedisClient;
  settings: JobsSettings;
  kinds: JobKind<unknown>[];
  /** Housekeeping: kinds run by job schedulers, with the admin routes /api/v1/jobs/schedules. */
  schedules?: ScheduledKind<unknown>[];
  /** Bound of each Redis call a route makes; past it, 503. */
  timeoutMs?: number;
  /** Interval of the SSE stream's progress reads. */
  eventsPollMs?: number;
  /** false: this process enqueues and answers, but runs no job. */
  work?: boolean;
  /**
   * The scope a credential needs to cancel or retry a job (default: write). A service whose kinds all start with a
   * read key (work that changes no one's data) lets the same key stop and restart them.
   */
  manageScope?: 'read' | 'write';
  /**
   * Whether the credential a job was started with still stands (its key not revoked nor expired, its user not
   * removed): asked before each batch, and a job whose credential fell stops for good. Without it, jobs are not
   * checked.
   */
  principalLive?: (principal: Principal) => Promise<boolean>;
}

declare module 'fastify' {
  interface FastifyInstance {
    jobs: JobQueue;
  }
}

const TAGS = ['jobs'];
const STATES = ['waiting', 'delayed', 'active', 'completed', 'failed', 'cancelled'] as const;
type State = (typeof STATES)[number];

const ProgressSchema = Type.Object({ current: Type.Integer(), total: Type.Integer(), percentage: Type.Number() });

export const JobView = Type.Object({
  id: Type.String(),
  kind: Type.String(),
  state: Type.Union([
    Type.Literal('waiting'),
    Type.Literal('delayed'),
    Type.Literal('active'),
    Type.Literal('completed'),
    Type.Literal('failed'),
    Type.Literal('cancelled'),
    Type.Literal('unknown'),
  ]),
  progress: ProgressSchema,
  result: Type.Optional(Type.Unknown()),
  error: Type.Optional(Type.String()),
  attempts: Type.Integer({ description: 'Tries made so far' }),
  cancelRequested: Type.Optional(Type.Boolean()),
  createdAt: Type.String({ format: 'date-time' }),
  startedAt: Type.Optional(Type.String({ format: 'date-time' })),
  finishedAt: Type.Optional(Type.String({ format: 'date-time' })),
  durationMs: Type.Optional(Type.Integer({ description: 'From start to finish of the last try' })),
});

const Accepted = Type.Object({ ...JobView.properties, duplicate: Type.Boolean({ description: 'True when the same request had already started this job' }) });
// A scheduler's tick is `repeat:<kind>:<time>`, hence the colon.
const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9_:-]+$' }) }, { additionalProperties: false });
const TenantQuery = Type.String({
  pattern: `^(${SYSTEM_TENANT}|[a-z0-9][a-z0-9_-]{0,62})$`,
  description: `\`${SYSTEM_TENANT}\`: the scheduled housekeeping jobs (admins only); another tenant's: 403`,
});
const GetQuery = Type.Object({ tenant: Type.Optional(TenantQuery) }, { additionalProperties: false });
const ListQuery = Type.Object(
  {
    tenant: Type.Optional(TenantQuery),
    state: Type.Optional(Type.Union(STATES.map((s) => Type.Literal(s)), { description: 'One of ' + STATES.join(', ') })),
    kind: Type.Optional(Type.String({ maxLength: 100 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
    offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000, default: 0 })),
  },
  { additionalProperties: false },
);
const ListResponse = Type.Object({ total: Type.Integer(), offset: Type.Integer(), limit: Type.Integer(), jobs: Type.Array(JobView) });
const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'The same key (per tenant and kind) answers the job it started' })),
});

function progressOf(job: Job): Progress {
  return progressFrom(job.progress);
}

function progressFrom(saved: unknown): Progress {
  const p = saved as Partial<Progress> | number | undefined;
  if (p && typeof p === 'object' && typeof p.current === 'number' && typeof p.total === 'number') {
    return { current: p.current, total: p.total, percentage: typeof p.percentage === 'number' ? p.percentage : 0 };
  }
  return { current: 0, total: 0, percentage: 0 };
}

/** A state read without the job: only those a job follows between whole reads (the others need its failure reason). */
function runningStateOf(raw: string): 'waiting' | 'delayed' | 'active' | undefined {
  if (raw === 'waiting' || raw === 'prioritized' || raw === 'waiting-children') return 'waiting';
  return raw === 'delayed' || raw === 'active' ? raw : undefined;
}

function stateOf(raw: string, job: { failedReason?: string | undefined }): State | 'unknown' {
  if (raw === 'failed' && job.failedReason === CANCELLED) return 'cancelled';
  if (raw === 'waiting' || raw === 'prioritized' || raw === 'waiting-children') return 'waiting';
  return (STATES as readonly string[]).includes(raw) ? (raw as State) : 'unknown';
}

const DONE = new Set(['completed', 'failed', 'cancelled']);

const iso = (ms: number | undefined) => (ms ? new Date(ms).toISOString() : undefined);

export type JobViewT = Static<typeof JobView>;

/**
 * The job as the routes answer it. `queue`: where to read the job again when it finished after `job` was read (the
 * hash is read before the state, so without it a job finishing in between reads as completed with the progress of
 * its last step but one and no result).
 */
export async function viewOf(job: Job, cancelRequested = false, queue?: Queue): Promise<JobViewT> {
  const raw = await job.getState();
  if ((raw === 'completed' || raw === 'failed') && !job.finishedOn && queue) {
    // A finished job's hash is final, so this second read agrees with the state.
    const fresh = await queue.getJob(job.id as string);
    if (fresh) job = fresh;
  }
  let state = stateOf(raw, job);
  // Still read before the finish (no queue to read it again from): shown as running rather than finished without
  // its result or error; the next read shows it finished.
  if (DONE.has(state) && !job.finishedOn) state = 'active';
  const startedAt = iso(job.processedOn);
  const finishedAt = state === 'completed' || state === 'failed' || state === 'cancelled' ? iso(job.finishedOn) : undefined;
  return {
    id: job.id as string,
    kind: job.name,
    state,
    progress: progressOf(job),
    ...(state === 'completed' ? { result: job.returnvalue as unknown } : {}),
    ...((state === 'failed' || state === 'cancelled') && job.failedReason ? { error: job.failedReason } : {}),
    attempts: job.attemptsMade,
    ...(cancelRequested && state === 'active' ? { cancelRequested: true } : {}),
    createdAt: new Date(job.timestamp).toISOString(),
    ...(startedAt ? { startedAt } : {}),
    ...(finishedAt ? { finishedAt } : {}),
    ...(finishedAt && job.processedOn && job.finishedOn ? { durationMs: job.finishedOn - job.processedOn } : {}),
  };
}

/**
 * `app.jobs` and the routes under /api/v1/jobs: start (one route per kind), read, list, cancel, retry, and follow a
 * job's progress as Server-Sent Events. Every route acts for the request's tenant: another tenant's job answers
 * exactly as an unknown id (404). Refuses to start on a Redis that may evict keys (JobsRefusedError).
 */
export async function registerJobs(scope: FastifyInstance, opts: JobsPluginOptions): Promise<JobRouteHelpers> {
  const runners = Object.fromEntries(opts.kinds.map((k) => [k.name, (ctx: JobContext<unknown>) => k.run(ctx)]));
  const schedules = opts.schedules ?? [];
  const scheduledRunners = Object.fromEntries(schedules.map((k) => [k.name, (ctx: JobContext<unknown>) => k.run(ctx)]));
  const kindsByName = new Map(opts.kinds.map((k) => [k.name, k]));
  const jobs = new JobQueue({
    service: opts.service,
    redis: opts.redis,
    settings: opts.settings,
    runners,
    ...(schedules.length > 0 ? { scheduledRunners } : {}),
    ...(opts.work === false ? { work: false } : {}),
    ...(opts.principalLive ? { principalLive: opts.principalLive } : {}),
    logger: scope.log,
  });
  scope.decorate('jobs', jobs);
  // The policy is checked without holding up the boot (a Redis away at boot answers once it is back); the worker
  // starts only once it passed, and an evicting Redis turns every job route into a 503 that says why.
  let refusal: JobsRefusedError | undefined;
  let checked = false;
  let check: Promise<void> | undefined;
  // Every replica makes the schedulers match its settings: the last to boot decides an interval that was changed.
  const applySchedules = () => {
    if (schedules.length === 0 || closed) return;
    void jobs.applySchedules(schedules.map((k) => ({ kind: k.name, everyMs: k.everyMs, input: k.input }))).then(
      (applied) => scope.log.info(applied, 'jobs: schedules applied'),
      (err: Error) => scope.log.warn({ err: { message: err.message } }, 'jobs: schedules could not be applied'),
    );
  };
  scope.addHook('onReady', async () => {
    check = assertNoEviction(opts.redis).then(
      () => {
        checked = true;
        applySchedules();
        if (!closed) jobs.start();
      },
      (err: unknown) => {
        checked = true;
        if (err instanceof JobsRefusedError) {
          refusal = err;
          scope.log.error({ err: { message: err.message } }, 'background jobs are off');
          return;
        }
        if (closed) return;
        scope.log.warn({ err: { message: (err as Error).message } }, 'jobs: maxmemory-policy could not be read; jobs run unchecked');
        applySchedules();
        jobs.start();
      },
    );
  });
  let closed = false;
  scope.addHook('onClose', async () => {
    closed = true;
    await jobs.close();
  });

  const timeoutMs = opts.timeoutMs ?? 5000;
  const bounded = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        fn(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new StateUnavailable('job queue', `Redis did not answer ${what} within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode) throw err;
      throw new StateUnavailable('job queue', `${what} failed: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  };
  const gate = async (): Promise<void> => {
    if (!checked) await bounded('the maxmemory-policy check', () => check ?? Promise.resolve());
    if (refusal) throw errors.PeerUnavailable('background jobs', refusal.message);
  };
  /**
   * The tenant a read acts for: the request's own, or the system tenant's scheduled jobs for an admin. No credential
   * reads another tenant's jobs, an admin's neither (tenants never read each other's data).
   */
  const readerTenant = (request: FastifyRequest, asked: string | undefined): string => {
    if (asked === undefined) return tenantOf(request);
    const p = request.principal;
    // Without the auth plugin (a bare queue) there is no principal to judge: the query is taken as given.
    if (!p) return asked;
    if (asked === SYSTEM_TENANT) {
      if (p.kind !== 'bootstrap' && !allows(p.scopes, 'admin')) throw new Forbidden(`?tenant=${SYSTEM_TENANT} (the scheduled housekeeping jobs): admins only`);
      return asked;
    }
    if (asked !== tenantOf(request)) throw new Forbidden("?tenant= names another tenant: a credential reads its own tenant's jobs only");
    return asked;
  };
  const mine = async (request: FastifyRequest, id: string, asked?: string): Promise<Job> => {
    await gate();
    const tenant = readerTenant(request, asked);
    const job = await bounded('reading the job', () => jobs.get(tenant, id));
    if (!job) throw errors.NotFound('job', id);
    return job;
  };
  /**
   * The tenant's job, for a cancel or a retry: stopping or restarting a job takes what starting its kind takes (a
   * write key may not cancel the admin's re-embed of the index, though it reads it as its tenant's job).
   */
  const managed = async (request: FastifyRequest, id: string): Promise<Job> => {
    const job = await mine(request, id);
    const needed = kindsByName.get(job.name)?.scope;
    const p = request.principal;
    if (needed && p && p.kind !== 'bootstrap' && !allows(p.scopes, needed)) {
      throw new Forbidden(`a ${job.name} job is cancelled or retried with the ${needed} scope, as it is started`);
    }
    return job;
  };

  /** Another job of an exclusive kind waits or runs: the 409 that says which. */
  const busyConflict = (busy: KindBusy) => errors.Conflict(busy.message);

  const app = scope.withTypeProvider<TypeBoxTypeProvider>();

  for (const kind of opts.kinds) {
    app.post(
      `/api/v1/jobs/${kind.name}`,
      {
        ...(kind.bodyLimit ? { bodyLimit: kind.bodyLimit } : {}),
        ...(kind.scope ? { config: { auth: kind.scope } } : {}),
        schema: {
          tags: TAGS,
          summary: kind.summary,
          description:
            `${kind.description} Answers 202 with the job at once; follow it with GET /api/v1/jobs/{id} or its /events stream. ` +
            'Submitting the same body again (or the same Idempotency-Key) answers the job already started instead of starting another.',
          headers: IdempotencyHeaders,
          body: kind.body,
          response: { 202: Accepted, ...errorResponses(...(kind.exclusive ? [400, 409, 413, 503] : [400, 413, 503])) },
        },
      },
      async (request, reply) => {
        await gate();
        const tenant = tenantOf(request);
        const key = request.headers['idempotency-key'];
        const id = jobIdOf(tenant, kind.name, typeof key === 'string' && key ? `key:${key}` : `body:${canonicalJson(request.body)}`);
        // A submission that is already a job is answered before prepare does any work (or stores anything).
        const existing = await bounded('reading the job', () => jobs.find(id));
        if (existing) {
          const view = await bounded('reading the job', () => viewOf(existing, false, jobs.queueOf(existing)));
          return reply.code(202).header('location', `/api/v1/jobs/${id}`).send({ ...view, duplicate: true });
        }
        if (kind.exclusive) {
          const busy = await bounded('reading the jobs', () => jobs.busyWith(kind.name, id));
          if (busy) throw busyConflict(new KindBusy(kind.name, busy));
        }
        const input = kind.prepare ? await kind.prepare(request.body, request, { id, tenant }) : request.body;
        const data: JobData = { tenant, input, ...(request.principal ? { principal: request.principal } : {}) };
        let added: Awaited<ReturnType<JobQueue['add']>>;
        try {
          added = await bounded('adding the job', () => jobs.add(kind.name, id, data, { exclusive: kind.exclusive }));
        } catch (err) {
          // No job holds what prepare stored: drop it now rather than at its expiry (best effort, Redis may be away).
          if (kind.discard) await kind.discard(input).catch(() => undefined);
          // Another submission of the kind got there between the check above and the add: nothing was added.
          if (err instanceof KindBusy) throw busyConflict(err);
          throw err;
        }
        const { job, created } = added;
        if (!created && kind.discard) await kind.discard(input);
        const view = await bounded('reading the job', () => viewOf(job, false, jobs.queueOf(job)));
        return reply.code(202).header('location', `/api/v1/jobs/${id}`).send({ ...view, duplicate: !created });
      },
    );
  }

  if (schedules.length > 0) {
    const names = schedules.map((k) => k.name);
    const ScheduleView = Type.Object({
      kind: Type.String(),
      summary: Type.String(),
      everyMs: Type.Integer({ description: 'The interval this process was configured with; 0 = off' }),
      scheduled: Type.Boolean({ description: 'Whether the state Redis holds a scheduler for it' }),
      next: Type.Optional(Type.String({ format: 'date-time', description: 'When the next tick is due' })),
    });
    app.get(
      '/api/v1/jobs/schedules',
      {
        config: { auth: 'admin' },
        schema: {
          tags: TAGS,
          summary: 'The scheduled housekeeping kinds and their next run',
          description: `Each runs once per interval across all replicas, as tenant \`${SYSTEM_TENANT}\`: its jobs are listed by GET /api/v1/jobs?tenant=${SYSTEM_TENANT}.`,
          response: { 200: Type.Object({ schedules: Type.Array(ScheduleView) }), ...errorResponses(503) },
        },
      },
      async () => {
        await gate();
        const inRedis = await bounded('reading the schedulers', () => jobs.schedulers());
        return {
          schedules: schedules.map((k) => {
            const s = inRedis.find((r) => r.kind === k.name);
            const next = s?.next ? iso(s.next) : undefined;
            return { kind: k.name, summary: k.summary, everyMs: k.everyMs, scheduled: s !== undefined, ...(next ? { next } : {}) };
          }),
        };
      },
    );
    app.post(
      '/api/v1/jobs/schedules/:kind/run',
      {
        config: { auth: 'admin' },
        schema: {
          tags: TAGS,
          summary: 'Run a scheduled kind now, besides its schedule',
          description: `One job of the kind at once (202), as tenant \`${SYSTEM_TENANT}\`; follow it with GET /api/v1/jobs/{id}?tenant=${SYSTEM_TENANT}.`,
          params: Type.Object({ kind: Type.Union(names.map((n) => Type.Literal(n))) }, { additionalProperties: false }),
          response: { 202: JobView, ...errorResponses(400, 503) },
        },
      },
      async (request, reply) => {
        await gate();
        const kind = schedules.find((k) => k.name === request.params.kind)!;
        const job = await bounded('adding the job', () => jobs.runNow(kind.name, kind.input ?? {}));
        const view = await bounded('reading the job', () => viewOf(job, false, jobs.queueOf(job)));
        return reply.code(202).header('location', `/api/v1/jobs/${job.id as string}?tenant=${SYSTEM_TENANT}`).send(view);
      },
    );
  }

  app.get(
    '/api/v1/jobs',
    {
      schema: {
        tags: TAGS,
        summary: "List the tenant's jobs (newest first)",
        description: `\`?tenant=${SYSTEM_TENANT}\` lists the scheduled housekeeping jobs (admins only).`,
        querystring: ListQuery,
        response: { 200: ListResponse, ...errorResponses(400, 403, 503) },
      },
    },
    async (request) => {
      await gate();
      const { state, kind } = request.query;
      const offset = request.query.offset ?? 0;
      const limit = request.query.limit ?? 20;
      const tenant = readerTenant(request, request.query.tenant);
      const view = (job: Job) => viewOf(job, false, jobs.queueOf(job));
      if (!state && !kind) {
        // The page alone is read.
        const page = await bounded('listing jobs', () => jobs.page(tenant, offset, limit));
        return { total: page.total, offset, limit, jobs: await bounded('reading the jobs', () => Promise.all(page.jobs.map(view))) };
      }
      // Filtered: every job's kind (and state) from its hash, then the page of those that match read whole.
      const briefs = await bounded('listing jobs', () => jobs.briefs(tenant, state !== undefined));
      const matching = briefs.filter((b) => (!kind || b.kind === kind) && (!state || stateOf(b.state ?? '', b) === state));
      const read = await bounded('reading the jobs', () =>
        Promise.all(
          matching.slice(offset, offset + limit).map(async (b) => {
            const job = await jobs.find(b.id);
            return job && view(job);
          }),
        ),
      );
      // A job that moved on between the two reads is shown as it is now, unless it left the state asked for (or is gone).
      const views = read.filter((v): v is JobViewT => v !== undefined && (!state || v.state === state));
      return { total: matching.length, offset, limit, jobs: views };
    },
  );

  app.get(
    '/api/v1/jobs/:id',
    {
      schema: {
        tags: TAGS,
        summary: 'A job: state, progress, result or error, timings',
        description: `\`?tenant=${SYSTEM_TENANT}\` reads a scheduled housekeeping job (admins only).`,
        params: IdParams,
        querystring: GetQuery,
        response: { 200: JobView, ...errorResponses(400, 403, 404, 503) },
      },
    },
    async (request) => {
      const job = await mine(request, request.params.id, request.query.tenant);
      return bounded('reading the job', async () => viewOf(job, await jobs.isCancelled(request.params.id), jobs.queueOf(job)));
    },
  );

  app.delete(
    '/api/v1/jobs/:id',
    {
      ...(opts.manageScope ? { config: { auth: opts.manageScope } } : {}),
      schema: {
        tags: TAGS,
        summary: 'Cancel a job',
        description:
          'A job not started yet is removed (200, state cancelled). A running one is asked to stop: it stops before its next batch ' +
          '(202, cancelRequested; what it already did stays done) and ends in state cancelled. A finished job: 409.',
        params: IdParams,
        response: { 200: JobView, 202: JobView, ...errorResponses(400, 404, 409, 503) },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const job = await managed(request, id);
      const before = await bounded('reading the job', () => viewOf(job, false, jobs.queueOf(job)));
      if (DONE.has(before.state)) throw errors.Conflict(`job '${id}' has already finished (${before.state}); nothing to cancel`);
      await bounded('cancelling the job', () => jobs.requestCancel(id));
      if (before.state === 'waiting' || before.state === 'delayed') {
        // Removing fails when a worker has just taken it: the flag then stops it at its first batch.
        const removed = await job.remove().then(
          () => true,
          () => false,
        );
        if (removed) {
          await bounded('cancelling the job', () => jobs.forget(tenantOf(request), id));
          // What prepare stored for a job that will never run goes with it (else it would wait for its expiry).
          const kind = kindsByName.get(job.name);
          if (kind?.discard) await bounded('cancelling the job', () => kind.discard!((job.data as JobData).input));
          return reply.code(200).send({ ...before, state: 'cancelled' as const });
        }
      }
      const fresh = await mine(request, id);
      const view = await bounded('reading the job', () => viewOf(fresh, true, jobs.queueOf(fresh)));
      return reply.code(DONE.has(view.state) ? 200 : 202).send(view);
    },
  );

  app.post(
    '/api/v1/jobs/:id/retry',
    {
      ...(opts.manageScope ? { config: { auth: opts.manageScope } } : {}),
      schema: {
        tags: TAGS,
        summary: 'Run a failed or cancelled job again',
        description: 'It resumes after the last batch saved in its progress. A job that is not failed or cancelled: 409.',
        params: IdParams,
        response: { 202: JobView, ...errorResponses(400, 404, 409, 503) },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const job = await managed(request, id);
      const view = await bounded('reading the job', () => viewOf(job, false, jobs.queueOf(job)));
      if (view.state !== 'failed' && view.state !== 'cancelled') throw errors.Conflict(`job '${id}' is ${view.state}: only a failed or cancelled job can be retried`);
      const exclusive = kindsByName.get(job.name)?.exclusive === true;
      if (exclusive) {
        const busy = await bounded('reading the jobs', () => jobs.claimForRetry(job));
        if (busy) throw busyConflict(new KindBusy(job.name, busy));
      }
      await bounded('retrying the job', async () => {
        await jobs.clearCancel(id);
        // The retry acts for whoever retried it (same tenant, allowed to start the kind): a job that stopped because
        // the key that started it was revoked runs again for a valid one.
        if (request.principal) await job.updateData({ ...(job.data as JobData), principal: request.principal });
        await job.retry('failed');
      }).catch(async (err: unknown) => {
        // Released only if the retry did not happen after all (a bound that ran out may still see it done).
        if (exclusive && (await job.getState().catch(() => undefined)) === 'failed') {
          await jobs.releaseRetryClaim(job).catch(() => undefined);
        }
        throw err;
      });
      const fresh = await mine(request, id);
      return reply.code(202).send(await bounded('reading the job', () => viewOf(fresh, false, jobs.queueOf(fresh))));
    },
  );

  const pollMs = opts.eventsPollMs ?? 250;
  app.get(
    '/api/v1/jobs/:id/events',
    {
      schema: {
        tags: TAGS,
        summary: "Follow a job's progress (Server-Sent Events)",
        description:
          'text/event-stream: an `event: progress` with the job (state and progress) at once and whenever it changes, then one ' +
          '`event: completed`, `failed` or `cancelled` with the finished job, and the stream ends. `curl -N` shows it live.',
        params: IdParams,
        response: { 200: Type.String({ description: 'text/event-stream' }), ...errorResponses(400, 404, 503) },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const tenant = tenantOf(request);
      await mine(request, id);
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
      let open = true;
      request.raw.on('close', () => {
        open = false;
      });
      const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      let last = '';
      let lastWrite = Date.now();
      // The last whole read: while the job stays in its state, each tick reads only the state and the progress.
      let whole: JobViewT | undefined;
      while (open) {
        let view: JobViewT | undefined;
        let unanswered = false;
        try {
          const peeked = whole ? await bounded('reading the job', () => jobs.peek(id)) : undefined;
          if (whole && peeked && runningStateOf(peeked.state) === whole.state) {
            view = { ...whole, progress: progressFrom(peeked.progress) };
          } else {
            const job = await bounded('reading the job', () => jobs.get(tenant, id));
            view = job ? await bounded('reading the job', () => viewOf(job, false, jobs.queueOf(job))) : undefined;
            whole = view;
          }
        } catch {
          unanswered = true;
          // Redis trouble: say so and keep following (the job goes on without us).
          if (Date.now() - lastWrite > 5000) {
            res.write(': the job queue does not answer; still following\n\n');
            lastWrite = Date.now();
          }
        }
        if (view === undefined && !unanswered) {
          // Removed while followed (a cancel before it started, or retention).
          send('cancelled', { id, state: 'cancelled' });
          break;
        }
        if (view) {
          const sig = `${view.state}|${view.progress.current}|${view.progress.total}`;
          if (DONE.has(view.state)) {
            send(view.state, view);
            break;
          }
          if (sig !== last) {
            send('progress', view);
            last = sig;
            lastWrite = Date.now();
          } else if (Date.now() - lastWrite > 15_000) {
            res.write(': keep-alive\n\n');
            lastWrite = Date.now();
          }
        }
        await new Promise((r) => setTimeout(r, pollMs));
      }
      res.end();
    },
  );

  return { mine, bounded };
}
