import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**', 'bench/peers/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: keep the worker count at the core count so timing-sensitive socket tests stay sane.
    maxWorkers: 2,
  },
});
