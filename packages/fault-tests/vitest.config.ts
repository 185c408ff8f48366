import { defineConfig } from 'vitest/config';

// These tests kill, pause and restart private redis-servers under load: one file at a time on two
// shared cores, with room for boots and recoveries. The only time bounds inside are hang detectors.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    fileParallelism: false,
  },
});
