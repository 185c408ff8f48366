import { defineConfig } from 'vitest/config';

// The end-to-end file starts three services and a Redis: give hooks room.
export default defineConfig({ test: { testTimeout: 60_000, hookTimeout: 120_000 } });
