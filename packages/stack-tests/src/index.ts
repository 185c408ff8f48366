export * from './repo.js';
export * from './redis-process.js';
export * from './processes.js';
export * from './compose.js';
