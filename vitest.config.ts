import { configDefaults, defineConfig } from 'vitest/config';

// Three projects: pure unit tests next to the code, integration tests that start real Postgres,
// and kube tests that share one real etcd + kube-apiserver per run (started by their globalSetup,
// which runs only when kube tests are selected). Two cores: keep integration files few at a time.
export default defineConfig({
  test: {
    // Tests that spawn the `byline` command run the compiled build: compile it first.
    globalSetup: ['test/harness/build.ts'],
    projects: [
      {
        test: {
          name: 'unit',
          sequence: { groupOrder: 0 },
          include: [
            'api/src/**/*.test.ts',
            'sidecar/src/**/*.test.ts',
            'collector/src/**/*.test.ts',
            'collector/ui/src/**/*.test.ts',
            'operator/src/**/*.test.ts',
            'cli/src/**/*.test.ts',
          ],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'integration',
          sequence: { groupOrder: 1 },
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, 'test/kube/**'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          maxWorkers: 2,
        },
      },
      {
        test: {
          name: 'kube',
          sequence: { groupOrder: 2 },
          include: ['test/kube/**/*.test.ts'],
          // Builds the binaries on first use (minutes), then starts the control plane (seconds).
          globalSetup: ['test/kube/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          maxWorkers: 2,
        },
      },
    ],
  },
});
