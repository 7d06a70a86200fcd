import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Three test files at a time on a 2-core machine: most of a file's time is waiting (moto, Docker,
    // kubectl, loops' timers). With two, a clean-clone run used 1.34 cores on average over 1,300 s; with
    // three, 1.77 cores over 1,127 s (2026-12-06, CI's limit is 30 minutes for everything).
    maxWorkers: 3,
    // The JSON report lets .ci/run print a one-line count of passed, failed and skipped tests.
    reporters: ['default', 'json'],
    outputFile: { json: '.test-results.json' },
  },
});
