import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static, type TSchema } from 'typebox';
import type { Job } from 'bullmq';
import { tenantOf, type Scope } from '@aicache/auth';
import { errorResponses, errors, StateUnavailable } from '@aicache/service-kit';
import {
  assertNoEviction,
  canonicalJson,
  CANCELLED,
  jobIdOf,
  JobQueue,
  JobsRefusedError,
  type JobContext,
  type JobData,
  type JobsSettings,
  type Progress,
  type RedisClient,
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
   * body or Idempotency-Key still answers the job already started).
   */
  exclusive?: boolean;
  /**
   * Turns the validated body into the job's input at submission (e.g. fixing ids so a re-run writes the same
   * records); throw a 4xx error for input the schema cannot judge.
   */
  prepare?(body: unknown, request: FastifyRequest): I;
  run(ctx: JobContext<I>): Promise<unknown>;
}

export interface JobsPluginOptions {
  service: string;
  /** The state Redis (BullMQ gets its own copies of the connection). */
  redis: RedisClient;
  settings: JobsSettings;
  kinds: JobKind<unknown>[];
  /** Bound of each Redis call a route makes; past it, 503. */
  timeoutMs?: number;
  /** Interval of the SSE stream's progress reads. */
  eventsPollMs?: number;
  /** false: this process enqueues and answers, but runs no job. */
  work?: boolean;
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
const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9_-]+$' }) }, { additionalProperties: false });
const ListQuery = Type.Object(
  {
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
  const p = job.progress as Partial<Progress> | number | undefined;
  if (p && typeof p === 'object' && typeof p.current === 'number' && typeof p.total === 'number') {
    return { current: p.current, total: p.total, percentage: typeof p.percentage === 'number' ? p.percentage : 0 };
  }
  return { current: 0, total: 0, percentage: 0 };
}

function stateOf(raw: string, job: Job): State | 'unknown' {
  if (raw === 'failed' && job.failedReason === CANCELLED) return 'cancelled';
  if (raw === 'waiting' || raw === 'prioritized' || raw === 'waiting-children') return 'waiting';
  return (STATES as readonly string[]).includes(raw) ? (raw as State) : 'unknown';
}

const iso = (ms: number | undefined) => (ms ? new Date(ms).toISOString() : undefined);

export type JobViewT = Static<typeof JobView>;

export async function viewOf(job: Job, cancelRequested = false): Promise<JobViewT> {
  const state = stateOf(await job.getState(), job);
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

const DONE = new Set(['completed', 'failed', 'cancelled']);

/**
 * `app.jobs` and the routes under /api/v1/jobs: start (one route per kind), read, list, cancel, retry, and follow a
 * job's progress as Server-Sent Events. Every route acts for the request's tenant: another tenant's job answers
 * exactly as an unknown id (404). Refuses to start on a Redis that may evict keys (JobsRefusedError).
 */
export async function registerJobs(scope: FastifyInstance, opts: JobsPluginOptions): Promise<void> {
  const runners = Object.fromEntries(opts.kinds.map((k) => [k.name, (ctx: JobContext<unknown>) => k.run(ctx)]));
  const jobs = new JobQueue({
    service: opts.service,
    redis: opts.redis,
    settings: opts.settings,
    runners,
    ...(opts.work === false ? { work: false } : {}),
    logger: scope.log,
  });
  scope.decorate('jobs', jobs);
  // The policy is checked without holding up the boot (a Redis away at boot answers once it is back); the worker
  // starts only once it passed, and an evicting Redis turns every job route into a 503 that says why.
  let refusal: JobsRefusedError | undefined;
  let checked = false;
  let check: Promise<void> | undefined;
  scope.addHook('onReady', async () => {
    check = assertNoEviction(opts.redis).then(
      () => {
        checked = true;
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
  const mine = async (request: FastifyRequest, id: string): Promise<Job> => {
    await gate();
    const job = await bounded('reading the job', () => jobs.get(tenantOf(request), id));
    if (!job) throw errors.NotFound('job', id);
    return job;
  };

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
        const input = kind.prepare ? kind.prepare(request.body, request) : request.body;
        const data: JobData = { tenant, input, ...(request.principal ? { principal: request.principal } : {}) };
        if (kind.exclusive) {
          const other = await bounded('reading the jobs', () => jobs.unfinished(kind.name));
          const busy = other.find((j) => j.id !== id);
          if (busy) throw errors.Conflict(`a ${kind.name} job is already under way (${busy.id}); wait for it to finish or cancel it`);
        }
        const { job, created } = await bounded('adding the job', () => jobs.add(kind.name, id, data));
        const view = await bounded('reading the job', () => viewOf(job));
        return reply.code(202).header('location', `/api/v1/jobs/${id}`).send({ ...view, duplicate: !created });
      },
    );
  }

  app.get(
    '/api/v1/jobs',
    {
      schema: {
        tags: TAGS,
        summary: "List the tenant's jobs (newest first)",
        querystring: ListQuery,
        response: { 200: ListResponse, ...errorResponses(400, 503) },
      },
    },
    async (request) => {
      await gate();
      const { state, kind } = request.query;
      const offset = request.query.offset ?? 0;
      const limit = request.query.limit ?? 20;
      const all = await bounded('listing jobs', () => jobs.recent(tenantOf(request), 1000));
      const views = [];
      for (const job of all) {
        if (kind && job.name !== kind) continue;
        const view = await bounded('reading a job', () => viewOf(job));
        if (state && view.state !== state) continue;
        views.push(view);
      }
      return { total: views.length, offset, limit, jobs: views.slice(offset, offset + limit) };
    },
  );

  app.get(
    '/api/v1/jobs/:id',
    {
      schema: {
        tags: TAGS,
        summary: 'A job: state, progress, result or error, timings',
        params: IdParams,
        response: { 200: JobView, ...errorResponses(400, 404, 503) },
      },
    },
    async (request) => {
      const job = await mine(request, request.params.id);
      return bounded('reading the job', async () => viewOf(job, await jobs.isCancelled(request.params.id)));
    },
  );

  app.delete(
    '/api/v1/jobs/:id',
    {
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
      const job = await mine(request, id);
      const before = await bounded('reading the job', () => viewOf(job));
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
          return reply.code(200).send({ ...before, state: 'cancelled' as const });
        }
      }
      const fresh = await mine(request, id);
      const view = await bounded('reading the job', () => viewOf(fresh, true));
      return reply.code(DONE.has(view.state) ? 200 : 202).send(view);
    },
  );

  app.post(
    '/api/v1/jobs/:id/retry',
    {
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
      const job = await mine(request, id);
      const view = await bounded('reading the job', () => viewOf(job));
      if (view.state !== 'failed' && view.state !== 'cancelled') throw errors.Conflict(`job '${id}' is ${view.state}: only a failed or cancelled job can be retried`);
      await bounded('retrying the job', async () => {
        await jobs.clearCancel(id);
        await job.retry('failed');
      });
      const fresh = await mine(request, id);
      return reply.code(202).send(await bounded('reading the job', () => viewOf(fresh)));
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
      // 'start': a job gone before the first read ends the stream too.
      let last = 'start';
      let lastWrite = Date.now();
      while (open) {
        let view: JobViewT | undefined;
        try {
          const job = await bounded('reading the job', () => jobs.get(tenant, id));
          view = job ? await bounded('reading the job', () => viewOf(job)) : undefined;
        } catch {
          view = undefined;
          last = last === 'start' ? 'error' : last;
          // Redis trouble: say so and keep following (the job goes on without us).
          if (Date.now() - lastWrite > 5000) {
            res.write(': the job queue does not answer; still following\n\n');
            lastWrite = Date.now();
          }
        }
        if (view === undefined && last !== 'error') {
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
}
