export {
  JobQueue,
  JobCancelled,
  BadJobInput,
  JobsRefusedError,
  evictionPolicy,
  assertNoEviction,
  jobIdOf,
  canonicalJson,
  CANCELLED,
  DEFAULT_SETTINGS,
  type JobsSettings,
  type JobContext,
  type JobData,
  type Progress,
  type RedisClient,
} from './queue.js';
export { registerJobs, viewOf, JobView, type JobKind, type JobsPluginOptions } from './plugin.js';
