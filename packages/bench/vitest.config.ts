import { defineConfig } from 'vitest/config';

// The quick bench run starts Redis, child processes and load rounds: allow it minutes, not seconds.
export default defineConfig({ test: { testTimeout: 240_000, hookTimeout: 60_000 } });
