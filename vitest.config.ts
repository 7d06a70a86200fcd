import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // The JSON report lets .ci/run print a one-line count of passed, failed and skipped tests.
    reporters: ['default', 'json'],
    outputFile: { json: '.test-results.json' },
  },
});
