import type { BenchParams } from '../params.js';

export interface SectionContext {
  redisUrl: string;
  /** Whether the bench started this Redis: INFO commandstats deltas are then the bench's own. */
  privateRedis: boolean;
  params: BenchParams;
  log: (msg: string) => void;
}
