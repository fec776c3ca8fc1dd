import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 20_000,
    hookTimeout: 180_000,
    pool: 'forks',
    // Two cores: e2e files start their own monerod, wallets and tor
    // processes, so running more than two files at once only thrashes.
    maxWorkers: 2,
  },
});
