export {
  JobQueue,
  JobCancelled,
  BadJobInput,
  CredentialRevoked,
  JobsRefusedError,
  KindBusy,
  evictionPolicy,
  assertNoEviction,
  jobIdOf,
  queuePrefix,
  canonicalJson,
  CANCELLED,
  SYSTEM_TENANT,
  KEEP_SCHEDULED_COUNT,
  type Schedule,
  type JobsSweep,
  DEFAULT_SETTINGS,
  type JobsSettings,
  type JobContext,
  type JobData,
  type Progress,
  type RedisClient,
} from './queue.js';
export { registerJobs, viewOf, JobView, type JobKind, type ScheduledKind, type JobsPluginOptions, type JobRouteHelpers } from './plugin.js';
export { JobsConfig, jobsSettingsOf } from './config.js';
export { InputStore, inputsKeepSeconds } from './inputs.js';
