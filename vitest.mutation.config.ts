import { defineConfig } from 'vitest/config';

/**
 * The unit tests that cover the modules of `npm run mutation` (stryker.config.json): no servers, no I/O, so that
 * each mutant runs only the tests that reach its code (Stryker's per-test coverage).
 */
export default defineConfig({
  test: {
    include: ['core/**/*.test.ts', 'gateway/**/*.test.ts', 'processors/**/*.test.ts', 'alerting/**/*.test.ts', 'test/alerting-simulator.test.ts'],
    exclude: ['node_modules/**', 'dist/**', '**/*.int.test.ts'],
    pool: 'forks',
    maxWorkers: 1,
    // Coverage instrumentation on a shared 2-core machine makes the generated-case tests slow.
    testTimeout: 120_000,
  },
});
