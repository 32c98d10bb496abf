// Bundles the CLI into one CommonJS file started through V8's code cache (launcher.mjs): a plain tsc build took
// ~530 ms to start, an ESM bundle ~400 ms here; compiling the bundle was the largest single cost.
import { build } from "esbuild"
import { chmodSync, copyFileSync, rmSync } from "node:fs"

const dist = new URL("./dist/", import.meta.url)
rmSync(dist, { recursive: true, force: true })
await build({
  entryPoints: ["src/main.ts"],
  outfile: "dist/codex.cjs",
  bundle: true,
  format: "cjs",
  platform: "node",
  // The workspace packages' TypeScript sources, not their builds: bundling needs no build first.
  conditions: ["@codex-archive/source"],
  target: "node20",
  sourcemap: false,
  minify: true,
  legalComments: "none",
  // ESM-only idioms in the sources (createRequire(import.meta.url)) get the bundle's own URL.
  define: { "import.meta.url": "__codexBundleUrl" },
  banner: { js: "var __codexBundleUrl = require(\"node:url\").pathToFileURL(__filename).href;" },
  // @effect/cli's file-format parsers are never used by our commands (see src/internal/Unbundled.ts).
  alias: { yaml: "./src/internal/Unbundled.ts", toml: "./src/internal/Unbundled.ts", ini: "./src/internal/Unbundled.ts" },
  external: ["better-sqlite3", "zstd-napi", "pg-native", "cpu-features", "ssh2"],
  logLevel: "warning"
})
copyFileSync(new URL("./launcher.mjs", import.meta.url), new URL("./codex.mjs", dist))
chmodSync(new URL("./codex.mjs", dist), 0o755)
