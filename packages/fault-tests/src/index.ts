export { Load, isFailure, overlapping, percentile, round, sleep, now, type Sample, type Outcome, type LoadOptions } from './load.js';
export { recordFigures, printFigures, RESULTS_FILE } from './results.js';
export { LogSink } from './logs.js';
export { makeCerts, type TestCerts } from './certs.js';
