import { defineConfig } from 'vitest/config';

// Each file starts a Redis and three service processes: run the files one after another
// (two shared CPU cores) and give hooks room to boot and stop the stack.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});
