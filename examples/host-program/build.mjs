// Bundles the example the way a host bundles a program that embeds codex-archive: one ESM file, the native addons
// (better-sqlite3, zstd-napi) and the PostgreSQL driver's optional native binding left to node_modules.
import { build } from "esbuild"

await build({
  entryPoints: ["src/bin.ts"],
  outfile: "dist/embed.mjs",
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node20",
  // In this workspace the packages' TypeScript sources; a host outside it bundles their published dist/ instead.
  conditions: ["@codex-archive/source"],
  // Bundled CommonJS dependencies call require(): give the ESM bundle one.
  banner: { js: "import { createRequire as __cr } from \"node:module\"; const require = __cr(import.meta.url);" },
  external: ["better-sqlite3", "zstd-napi", "pg-native"],
  logLevel: "warning"
})
