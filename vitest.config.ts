import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Two test files at a time: most of a file's time is waiting (moto, Docker, kubectl, loops' timers),
    // and vitest's default on a 2-core machine (cores - 1) ran the suite one file at a time. Three were
    // faster (1,100 s against 1,300 s on 2026-12-06) but two of three runs each failed a test on a deadline
    // the load made it miss: two keep CI under its 30 minutes with the timing tests' margins intact.
    maxWorkers: 2,
    // The JSON report lets .ci/run print a one-line count of passed, failed and skipped tests.
    reporters: ['default', 'json'],
    outputFile: { json: '.test-results.json' },
  },
});
