import { defineConfig } from 'vitest/config';

// Files start redis-servers, service processes and a Prometheus: one file at a time (two shared CPU cores).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});
