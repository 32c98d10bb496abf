import { defineConfig } from "vitest/config"

// Workspace packages resolve to their TypeScript sources (their "@codex-archive/source" export condition): no build first.
const conditions = ["@codex-archive/source", "module", "node", "development|production"]

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["../../scripts/vitest-tmpdir.mjs"],
    setupFiles: ["test/setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000
  }
})
