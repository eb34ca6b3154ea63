import { defineConfig } from 'vitest/config';

// End-to-end tests: real headless Chromium against the real `proctor` binary. One file at a
// time (they share one server and one browser per file), long timeouts (lessons take seconds).
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.e2e.ts'],
    environment: 'node',
    fileParallelism: false,
    testTimeout: 90_000,
    hookTimeout: 120_000,
  },
});
