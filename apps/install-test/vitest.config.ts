import { defineConfig } from "vitest/config"

// Packing, an offline install and a type-check of the consumer against the installed declarations take a while.
export default defineConfig({ test: { include: ["test/**/*.test.ts"], testTimeout: 300_000, hookTimeout: 300_000 } })
