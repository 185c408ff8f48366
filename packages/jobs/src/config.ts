import { Type, type Static } from 'typebox';
import type { JobsSettings } from './queue.js';

/**
 * The JOBS_* variables every service with background jobs reads; a service spreads `JobsConfig.properties` into its
 * own config schema and passes `jobsSettingsOf(config)` to registerJobs.
 */
export const JobsConfig = Type.Object({
  /** Background jobs on the state Redis; false leaves out the job routes and runs no job. */
  JOBS_ENABLED: Type.Boolean({ default: true }),
  /** false: this process starts and answers jobs but runs none (another process with true runs them). */
  JOBS_WORKER: Type.Boolean({ default: true }),
  /** Jobs one process runs at once. */
  JOBS_CONCURRENCY: Type.Integer({ default: 2, minimum: 1, maximum: 64 }),
  /** Tries of a job that fails for a passing reason (peer down, Redis blip), with exponential backoff from JOBS_BACKOFF_MS. */
  JOBS_ATTEMPTS: Type.Integer({ default: 5, minimum: 1, maximum: 100 }),
  JOBS_BACKOFF_MS: Type.Integer({ default: 1000, minimum: 1 }),
  /** Finished jobs are kept at most this long (seconds) and this many; older ones are removed first. */
  JOBS_KEEP_COMPLETED_SECONDS: Type.Integer({ default: 86_400, minimum: 1 }),
  JOBS_KEEP_COMPLETED_COUNT: Type.Integer({ default: 1000, minimum: 1 }),
  JOBS_KEEP_FAILED_SECONDS: Type.Integer({ default: 7 * 86_400, minimum: 1 }),
  JOBS_KEEP_FAILED_COUNT: Type.Integer({ default: 1000, minimum: 1 }),
  /** How often a process looks for jobs whose process died, and how long a job's lock lasts unrenewed (ms). */
  JOBS_STALLED_INTERVAL_MS: Type.Integer({ default: 30_000, minimum: 100 }),
  JOBS_LOCK_DURATION_MS: Type.Integer({ default: 30_000, minimum: 100 }),
  /** On shutdown, how long running jobs may take to finish (ms, within the 10 s close grace); past it they are handed to another process. */
  JOBS_CLOSE_GRACE_MS: Type.Integer({ default: 8000, minimum: 0 }),
});
export type JobsConfig = Static<typeof JobsConfig>;

/** The queue's settings from the JOBS_* variables. */
export function jobsSettingsOf(config: JobsConfig): JobsSettings {
  return {
    concurrency: config.JOBS_CONCURRENCY,
    attempts: config.JOBS_ATTEMPTS,
    backoffMs: config.JOBS_BACKOFF_MS,
    keepCompletedSeconds: config.JOBS_KEEP_COMPLETED_SECONDS,
    keepCompletedCount: config.JOBS_KEEP_COMPLETED_COUNT,
    keepFailedSeconds: config.JOBS_KEEP_FAILED_SECONDS,
    keepFailedCount: config.JOBS_KEEP_FAILED_COUNT,
    stalledIntervalMs: config.JOBS_STALLED_INTERVAL_MS,
    lockDurationMs: config.JOBS_LOCK_DURATION_MS,
    closeGraceMs: config.JOBS_CLOSE_GRACE_MS,
  };
}
