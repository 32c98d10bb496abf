// Bundles the CLI: start-up drops from ~530 ms (tsc output) to ~200 ms (STACK.md). Backends become lazy chunks.
import { build } from "esbuild"
import { rmSync } from "node:fs"

rmSync(new URL("./dist", import.meta.url), { recursive: true, force: true })
await build({
  entryPoints: { codex: "src/main.ts" },
  outdir: "dist",
  outExtension: { ".js": ".mjs" },
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  sourcemap: false,
  minify: true,
  legalComments: "none",
  // @effect/cli's file-format parsers are never used by our commands (see src/internal/Unbundled.ts).
  alias: { yaml: "./src/internal/Unbundled.ts", toml: "./src/internal/Unbundled.ts", ini: "./src/internal/Unbundled.ts" },
  external: ["better-sqlite3", "zstd-napi", "pg-native", "cpu-features", "ssh2"],
  banner: { js: "#!/usr/bin/env node\nimport { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  logLevel: "warning"
})
