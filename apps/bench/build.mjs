// Bundles the bench into one file, dist/bench.mjs. Native and optional modules stay external (STACK.md trap 5);
// a server backend package that has no source yet becomes a stub, so the bench reports it unavailable at run time.
import { build } from "esbuild"
import { existsSync, rmSync } from "node:fs"

const pending = {
  name: "pending-backends",
  setup(b) {
    b.onResolve({ filter: /^@codex-archive\/backend-(postgres|mariadb)$/ }, (args) => {
      const entry = new URL(`./node_modules/${args.path}/src/index.ts`, import.meta.url)
      return existsSync(entry) ? undefined : { path: args.path, namespace: "pending-backend" }
    })
    b.onLoad({ filter: /.*/, namespace: "pending-backend" }, (args) => ({
      contents: `throw new Error(${
        JSON.stringify(
          `${args.path} had no source when the bench was bundled (rebuild: pnpm --filter @codex-archive/bench bundle)`
        )
      })`,
      loader: "js"
    }))
  }
}

rmSync(new URL("./dist", import.meta.url), { recursive: true, force: true })
await build({
  entryPoints: { bench: "src/main.ts" },
  outdir: "dist",
  outExtension: { ".js": ".mjs" },
  bundle: true,
  format: "esm",
  platform: "node",
  // The workspace packages' TypeScript sources, not their builds: bundling needs no build first.
  conditions: ["@codex-archive/source"],
  target: "node20",
  sourcemap: false,
  legalComments: "none",
  external: ["better-sqlite3", "zstd-napi", "pg-native", "cpu-features", "ssh2"],
  banner: {
    js:
      "#!/usr/bin/env node\nimport { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);"
  },
  plugins: [pending],
  logLevel: "warning"
})
