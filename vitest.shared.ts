import { defineConfig } from 'vitest/config';
import { defaultServerConditions } from 'vite';

// Tests import sibling packages from their TypeScript sources (the "@aimass/source" export
// condition), so a change in a lib is seen by its dependents' tests without a rebuild.
// Vite's 'module' condition is left out: it picks builds such as @opentelemetry/api's
// extension-less ESM that Node itself then cannot load when the dependency is externalized.
const conditions = ['@aimass/source', ...defaultServerConditions.filter((c) => c !== 'module')];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: conditions } },
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
