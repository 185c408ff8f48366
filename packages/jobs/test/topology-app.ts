import Fastify, { type FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { BaseConfig, createStateRedis, loadConfig } from '@aicache/service-kit';
import type { Principal } from '@aicache/auth';
import { BadJobInput, DEFAULT_SETTINGS, registerJobs, type JobContext, type JobKind, type JobsSettings, type RedisClient } from '../src/index.js';

/**
 * The state client a service makes from its environment (REDIS_CLUSTER_NODES, or REDIS_SENTINELS with
 * REDIS_SENTINEL_NAME): the jobs on these topologies run on exactly the connection production hands them.
 */
export function stateClientOf(env: Record<string, string>): RedisClient {
  return createStateRedis(loadConfig(BaseConfig, { env: { NODE_ENV: 'test', SERVICE_NAME: 'jobs-topology', ...env } }), { db: 0 });
}

export interface StepInput {
  steps: number;
  stepMs: number;
}

/** What the job code saw: every run of every job (a retried one shows up twice), and the jobs that ran to their end. */
export interface Runs {
  started: Array<{ id: string; attempt: number; resumeFrom: number }>;
  finished: Map<string, number>;
  /** The 'solo' kind's inputs stored by prepare and not yet discarded (by job id). */
  prepared: Set<string>;
}

/**
 * A Fastify app with the job routes on `redis` and one job kind, 'steps': `steps` steps of `stepMs` each, saving its
 * progress after every step and resuming after the last saved one (as the ingest job does per batch). The tenant is
 * the request's `x-tenant` header, standing in for the auth plugin's principal.
 */
export async function jobsApp(
  redis: RedisClient,
  service: string,
  settings: Partial<JobsSettings> = {},
  timeoutMs?: number,
): Promise<{ app: FastifyInstance; runs: Runs }> {
  const runs: Runs = { started: [], finished: new Map(), prepared: new Set() };
  const app = Fastify({ logger: false });
  app.decorateRequest('principal', undefined);
  app.addHook('onRequest', async (request) => {
    const tenant = typeof request.headers['x-tenant'] === 'string' ? request.headers['x-tenant'] : 'tenant-a';
    const scopes = typeof request.headers['x-scopes'] === 'string' ? (request.headers['x-scopes'].split(',') as Principal['scopes']) : ['write' as const];
    const principal: Principal = { kind: 'key', tenant, scopes };
    request.principal = principal;
  });
  const steps = async (ctx: JobContext<unknown>): Promise<{ steps: number }> => {
    const { steps, stepMs, fail } = ctx.input as StepInput & { fail?: boolean };
    runs.started.push({ id: ctx.id, attempt: ctx.attempt, resumeFrom: ctx.resumeFrom });
    if (fail && ctx.attempt === 1) throw new BadJobInput('asked to fail on its first run');
    for (let done = ctx.resumeFrom; done < steps; ) {
      await ctx.checkCancelled();
      await new Promise((r) => setTimeout(r, stepMs));
      done += 1;
      await ctx.progress(done, steps);
    }
    runs.finished.set(ctx.id, (runs.finished.get(ctx.id) ?? 0) + 1);
    return { steps };
  };
  // 'solo': one job at a time whatever the tenant, admins only (as a re-embed of the whole index); prepare stores a
  // record per job. (Starting it is not checked here, the auth plugin does that; cancel and retry are, by the routes.)
  const solo: JobKind<StepInput & { fail?: boolean; job: string }> = {
    name: 'solo',
    summary: 'solo',
    description: 'solo',
    exclusive: true,
    scope: 'admin',
    body: Type.Object({ steps: Type.Integer({ minimum: 1 }), stepMs: Type.Integer({ minimum: 0 }), fail: Type.Optional(Type.Boolean()), tag: Type.Optional(Type.String()) }),
    prepare(body, _request, job) {
      runs.prepared.add(job.id);
      return { ...(body as StepInput & { fail?: boolean }), job: job.id };
    },
    async discard(input) {
      runs.prepared.delete(input.job);
    },
    run: steps as JobKind<StepInput & { fail?: boolean; job: string }>['run'],
  };
  await registerJobs(app, {
    service,
    redis,
    settings: { ...DEFAULT_SETTINGS, closeGraceMs: 500, ...settings },
    eventsPollMs: 50,
    ...(timeoutMs ? { timeoutMs } : {}),
    kinds: [
      {
        name: 'steps',
        summary: 'steps',
        description: 'steps',
        bodyLimit: 8 * 1024 * 1024,
        body: Type.Object({
          steps: Type.Integer({ minimum: 1 }),
          stepMs: Type.Integer({ minimum: 0 }),
          tag: Type.Optional(Type.String()),
          // Ballast: the job's input, as large as a bulk ingest's.
          padding: Type.Optional(Type.String()),
        }),
        run: steps,
      },
      solo,
    ],
  });
  await app.ready();
  return { app, runs };
}

/** Waits (up to `timeoutMs`) until the app's worker runs: it starts once the eviction check passed on every master. */
export async function workerRunning(app: FastifyInstance, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!app.jobs.worker?.isRunning() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}

export interface JobViewLike {
  id: string;
  state: string;
  progress: { current: number; total: number; percentage: number };
  result?: { steps: number };
  attempts: number;
  error?: string;
}

export async function submit(app: FastifyInstance, body: StepInput & { tag?: string; padding?: string }, tenant = 'tenant-a'): Promise<JobViewLike> {
  const res = await app.inject({ method: 'POST', url: '/api/v1/jobs/steps', headers: { 'x-tenant': tenant }, payload: body });
  if (res.statusCode !== 202) throw new Error(`submit: ${res.statusCode} ${res.body}`);
  return res.json();
}

export async function read(app: FastifyInstance, id: string, tenant = 'tenant-a'): Promise<{ status: number; job: JobViewLike }> {
  const res = await app.inject({ method: 'GET', url: `/api/v1/jobs/${id}`, headers: { 'x-tenant': tenant } });
  return { status: res.statusCode, job: res.json() };
}

/** Polls the job until `done(job)` or the deadline; answers the last view. */
export async function waitFor(app: FastifyInstance, id: string, done: (job: JobViewLike) => boolean, timeoutMs = 20_000, tenant = 'tenant-a'): Promise<JobViewLike> {
  const deadline = Date.now() + timeoutMs;
  let last: JobViewLike | undefined;
  while (Date.now() < deadline) {
    const r = await read(app, id, tenant);
    if (r.status === 200) {
      last = r.job;
      if (done(r.job)) return r.job;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`job ${id} not there within ${timeoutMs} ms: ${JSON.stringify(last)}`);
}
