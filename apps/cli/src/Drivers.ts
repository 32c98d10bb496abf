/** Which backends this installation can open, for `codex --version`: each driver loaded the way a command loads it. */
import { Effect } from "effect"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import * as Backends from "./Backends.js"

// Versions of the drivers compiled into the bundle (build.mjs); absent when the sources run unbundled (tests).
declare const __CODEX_BUNDLED_DRIVERS__: Record<string, string> | undefined

export interface Driver {
  readonly backend: keyof typeof Backends.backends
  readonly driver: string
  readonly version: string | undefined
  /** Why it cannot be loaded; undefined when it can. */
  readonly error: string | undefined
}

/** The package.json version of the package a resolved file belongs to. */
const versionAt = (file: string, name: string): string | undefined => {
  for (let dir = path.dirname(file); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const manifest = path.join(dir, "package.json")
    if (!fs.existsSync(manifest)) continue
    const json = JSON.parse(fs.readFileSync(manifest, "utf8")) as { name?: string; version?: string }
    if (json.name === name) return json.version
  }
  return undefined
}

/** Resolves a chain of packages, each from the one before (pnpm does not hoist a dependency's dependencies). */
export const resolveVersion = (from: string, chain: ReadonlyArray<string>): string | undefined => {
  let file = from
  for (const name of chain) file = createRequire(file).resolve(name)
  return versionAt(file, chain[chain.length - 1]!)
}

/** Where each backend's driver comes from when it is not compiled into the bundle: through the backend package. */
export const chains = {
  sqlite: ["better-sqlite3"],
  postgres: ["@codex-archive/backend-postgres", "@effect/sql-pg", "pg"],
  mariadb: ["@codex-archive/backend-mariadb", "mysql2"]
} as const

const message = (error: unknown) => (error instanceof Error ? error.message : String(error)).split("\n")[0]!

const probe = (backend: Driver["backend"]): Effect.Effect<Driver> =>
  Effect.promise(async () => {
    const chain = chains[backend]
    const driver = chain[chain.length - 1]!
    const bundled = typeof __CODEX_BUNDLED_DRIVERS__ === "undefined" ? undefined : __CODEX_BUNDLED_DRIVERS__[driver]
    try {
      await Backends.backends[backend]()
      if (backend === "sqlite") {
        // better-sqlite3 stays outside the bundle and loads its native addon at the first open: open one in memory.
        const require = createRequire(import.meta.url)
        const Database = require("better-sqlite3") as new(file: string) => { close(): void }
        new Database(":memory:").close()
      }
      return { backend, driver, version: bundled ?? resolveVersion(import.meta.url, chain), error: undefined }
    } catch (error) {
      return { backend, driver, version: bundled, error: message(error) }
    }
  })

export const probeAll: Effect.Effect<ReadonlyArray<Driver>> = Effect.all(
  (Object.keys(Backends.backends) as Array<Driver["backend"]>).map(probe)
)

/** `codex --version`: our version, Node's, then one line per backend with its driver and whether it loads. */
export const describe = (version: string, drivers: ReadonlyArray<Driver>): string => {
  const rows = drivers.map((d) => [
    d.backend,
    d.version === undefined ? d.driver : `${d.driver} ${d.version}`,
    d.error === undefined ? "installed" : `not installed: ${d.error}`
  ])
  const widths = [0, 1].map((i) => Math.max(...rows.map((r) => r[i]!.length)))
  return [
    `codex ${version} (node ${process.version})`,
    "backend drivers:",
    ...rows.map((r) => `  ${r[0]!.padEnd(widths[0]!)}  ${r[1]!.padEnd(widths[1]!)}  ${r[2]}`)
  ].join("\n")
}
