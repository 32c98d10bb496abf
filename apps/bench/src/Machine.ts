/** Where a bench ran: runtime and driver versions, CPUs, memory and OS, recorded with every result. */
import { createRequire } from "node:module"
import * as os from "node:os"

const require = createRequire(import.meta.url)

/** A package's version as installed beside the bench (drivers resolve through the packages that use them). */
const versionOf = (name: string, via?: string): string => {
  try {
    const from = via === undefined ? require : createRequire(require.resolve(via))
    return (from(`${name}/package.json`) as { version: string }).version
  } catch {
    return "unknown"
  }
}

export const versions = (): Readonly<Record<string, string>> => ({
  node: process.version,
  effect: versionOf("effect"),
  "@effect/sql": versionOf("@effect/sql"),
  "@effect/sql-sqlite-node": versionOf("@effect/sql-sqlite-node", "@codex-archive/backend-sqlite"),
  "better-sqlite3": versionOf("better-sqlite3"),
  "zstd-napi": versionOf("zstd-napi"),
  "@effect/sql-pg": versionOf("@effect/sql-pg"),
  pg: versionOf("pg", "@effect/sql-pg"),
  "@effect/sql-mysql2": versionOf("@effect/sql-mysql2"),
  mysql2: versionOf("mysql2", "@effect/sql-mysql2")
})

export const describe = () => {
  const cpus = os.cpus()
  return {
    cpus: cpus.length,
    cpu_model: cpus[0]?.model.trim() ?? "unknown",
    memory_gib: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    os: `${os.type()} ${os.release()} ${os.arch()}`
  }
}
