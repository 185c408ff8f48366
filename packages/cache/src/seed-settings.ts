type Env = Record<string, string | undefined>;

export interface SettingNotice {
  variable: string;
  message: string;
}

/**
 * Redis settings of the original stack (redis-py) that have no ioredis counterpart here, each with what to do
 * instead. REDIS_SOCKET_TIMEOUT and REDIS_SOCKET_CONNECT_TIMEOUT are not among them: redisOptionsFromEnv honors them.
 */
const UNMAPPED: Array<[string, (dbVar: string) => string]> = [
  [
    'REDIS_MAX_CONNECTIONS',
    () =>
      'REDIS_MAX_CONNECTIONS is ignored: ioredis keeps one connection per client and pipelines commands on it, so there ' +
      'is no pool to size (a service opens one connection for the cache and one for state); remove it',
  ],
  [
    'REDIS_RETRY_ON_TIMEOUT',
    () =>
      'REDIS_RETRY_ON_TIMEOUT is ignored: a cache command that times out is a miss and is never retried, so a slow Redis ' +
      'cannot hold a request twice; set CACHE_COMMAND_TIMEOUT_MS to choose how long one may take, and remove it',
  ],
  ['REDIS_DB', (dbVar) => `REDIS_DB is ignored: each service has a DB of its own; set ${dbVar} instead`],
];

/** One notice for each setting of the original stack that is set here but changes nothing, naming what to set instead. */
export function unmappedRedisSettings(env: Env, dbVar: string): SettingNotice[] {
  return UNMAPPED.filter(([variable]) => (env[variable] ?? '').trim() !== '').map(([variable, message]) => ({ variable, message: message(dbVar) }));
}
