import { defineConfig } from 'vitest/config';

// Two projects: pure unit tests next to the code, and integration tests that start real
// Postgres (and later a real API server). Two cores: keep integration files few at a time.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          sequence: { groupOrder: 0 },
          include: ['api/src/**/*.test.ts', 'sidecar/src/**/*.test.ts', 'cli/src/**/*.test.ts'],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'integration',
          sequence: { groupOrder: 1 },
          include: ['test/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          maxWorkers: 2,
        },
      },
    ],
  },
});
