/** Bundles a test's worker entry with esbuild and runs it as separate node processes (real connections, real pids). */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

/** Native and optional modules stay outside the bundle and resolve from core's dependencies at run time. */
const external = ["zstd-napi", "better-sqlite3", "pg-native", "cpu-features", "ssh2"]
const coreModules = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../core/node_modules")

export const bundle = async (entry: string, outDir: string): Promise<string> => {
  const { build } = await import("esbuild")
  fs.mkdirSync(outDir, { recursive: true })
  const outfile = path.join(outDir, `${path.basename(entry, ".ts")}.mjs`)
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    format: "esm",
    platform: "node",
    // The workspace packages' TypeScript sources, not their builds.
    conditions: ["@codex-archive/source"],
    target: "node20",
    external,
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    logLevel: "error"
  })
  return outfile
}

export interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
  /** The JSON line the worker printed, when it succeeded. */
  readonly result: any
}

export const run = (
  script: string,
  args: ReadonlyArray<string>,
  env: Readonly<Record<string, string>> = {}
): Promise<Run> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], {
      env: { ...process.env, NODE_PATH: coreModules, ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    child.on("error", reject)
    child.on("close", (code) => {
      const line = stdout.trim().split("\n").pop() ?? ""
      let result: unknown
      try {
        result = code === 0 ? JSON.parse(line) : undefined
      } catch {
        result = undefined
      }
      resolve({ code, stdout, stderr, result })
    })
  })
