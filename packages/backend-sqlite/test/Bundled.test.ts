/**
 * The core's worker threads run code shipped as text: a host that bundles us must still get them working. Bundles a
 * tiny host (BundleHost.ts) with esbuild as ESM with --keep-names (which wraps functions in a `__name` helper the
 * workers lacked) and as CommonJS (where `import.meta.url` is empty), then stores and restores 300 files through it.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { build, type BuildOptions } from "esbuild"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const here = path.dirname(fileURLToPath(import.meta.url))
// Native addons stay outside the bundle (as a host keeps them); they resolve from the packages that declare them.
const nodePath = [path.join(here, "../node_modules"), path.join(here, "../../core/node_modules")].join(path.delimiter)

const bundleAndRun = async (options: BuildOptions) => {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "codex-bundled-")))
  // Inside this package's node_modules: an ESM bundle's `import "better-sqlite3"` ignores NODE_PATH.
  const out = path.join(here, "../node_modules/.cache")
  fs.mkdirSync(out, { recursive: true })
  const outfile = path.join(
    fs.mkdtempSync(path.join(out, "bundled-")),
    options.format === "cjs" ? "host.cjs" : "host.mjs"
  )
  await build({
    entryPoints: [path.join(here, "BundleHost.ts")],
    outfile,
    bundle: true,
    platform: "node",
    target: "node20",
    conditions: ["@codex-archive/source"],
    external: ["better-sqlite3", "zstd-napi", "pg-native", "cpu-features", "ssh2"],
    logLevel: "error",
    ...options
  })
  const run = spawnSync(process.execPath, [outfile, dir, "300"], {
    encoding: "utf8",
    env: { ...process.env, NODE_PATH: nodePath }
  })
  const bundle = fs.readFileSync(outfile, "utf8")
  fs.rmSync(path.dirname(outfile), { recursive: true, force: true })
  fs.rmSync(dir, { recursive: true, force: true })
  return { ...run, bundle }
}

describe("a host bundled with esbuild", () => {
  it.live("as ESM with --keep-names stores and restores 300 files through worker threads", () =>
    Effect.promise(() =>
      bundleAndRun({
        format: "esm",
        keepNames: true,
        banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" }
      })
    ).pipe(Effect.map((run) => {
      // The bundle really does carry the helper that broke the workers.
      expect(run.bundle).toContain("__name(")
      expect(run.stderr).toBe("")
      expect(JSON.parse(run.stdout)).toEqual({ stored: 300, restored: 300, differ: 0, failures: [] })
      expect(run.status).toBe(0)
    })))

  it.live("as CommonJS stores and restores 300 files through worker threads", () =>
    Effect.promise(() => bundleAndRun({ format: "cjs" })).pipe(Effect.map((run) => {
      expect(run.stderr).toBe("")
      expect(JSON.parse(run.stdout)).toEqual({ stored: 300, restored: 300, differ: 0, failures: [] })
      expect(run.status).toBe(0)
    })))
})
