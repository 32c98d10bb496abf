// Bundles the CLI into one CommonJS file started through V8's code cache (launcher.mjs): a plain tsc build took
// ~530 ms to start, an ESM bundle ~400 ms here; compiling the bundle was the largest single cost.
import { build } from "esbuild"
import { chmodSync, copyFileSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

/** The version of a package reached through a chain of dependencies (src/Drivers.ts resolves the same way). */
const versionOf = (chain) => {
  // Our own packages through their folder: their entries are builds that need not exist yet (a fresh clone).
  let file = fileURLToPath(new URL(`./node_modules/${chain[0]}/package.json`, import.meta.url))
  for (const name of chain.slice(1)) file = createRequire(file).resolve(name)
  const name = chain[chain.length - 1]
  for (let dir = path.dirname(file); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const manifest = path.join(dir, "package.json")
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, "utf8")).name === name) {
      return JSON.parse(readFileSync(manifest, "utf8")).version
    }
  }
  throw new Error(`build: cannot find the version of ${name}`)
}
// The drivers compiled into the bundle, whose package.json is not there to read at run time (`codex --version`).
const bundledDrivers = {
  pg: versionOf(["@codex-archive/backend-postgres", "@effect/sql-pg", "pg"]),
  mysql2: versionOf(["@codex-archive/backend-mariadb", "mysql2"])
}

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
  define: { "import.meta.url": "__codexBundleUrl", __CODEX_BUNDLED_DRIVERS__: JSON.stringify(bundledDrivers) },
  banner: { js: "var __codexBundleUrl = require(\"node:url\").pathToFileURL(__filename).href;" },
  // @effect/cli's file-format parsers are never used by our commands (see src/internal/Unbundled.ts).
  alias: {
    yaml: "./src/internal/Unbundled.ts",
    toml: "./src/internal/Unbundled.ts",
    ini: "./src/internal/Unbundled.ts"
  },
  external: ["better-sqlite3", "zstd-napi", "pg-native", "cpu-features", "ssh2"],
  logLevel: "warning"
})
// esbuild left one character above U+00FF raw (mysql2's /[\u0080-\uffff]/), and one is enough for V8 to hold the
// whole 2.6 MB source, which a script keeps for its lazy compilation, two bytes a character: 2.6 MB more heap in every
// command. As an escape it means the same in a string, a regex, a template or a comment.
const bundled = readFileSync(new URL("./codex.cjs", dist), "utf8")
writeFileSync(
  new URL("./codex.cjs", dist),
  bundled.replace(/[^\x00-\xff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
)
copyFileSync(new URL("./launcher.mjs", import.meta.url), new URL("./codex.mjs", dist))
chmodSync(new URL("./codex.mjs", dist), 0o755)
