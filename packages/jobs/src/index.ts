export {
  JobQueue,
  JobCancelled,
  BadJobInput,
  JobsRefusedError,
  evictionPolicy,
  assertNoEviction,
  jobIdOf,
  queuePrefix,
  canonicalJson,
  CANCELLED,
  DEFAULT_SETTINGS,
  type JobsSettings,
  type JobContext,
  type JobData,
  type Progress,
  type RedisClient,
} from './queue.js';
export { registerJobs, viewOf, JobView, type JobKind, type JobsPluginOptions, type JobRouteHelpers } from './plugin.js';
export { JobsConfig, jobsSettingsOf } from './config.js';
