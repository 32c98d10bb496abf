/**
 * The program's archive in one layer: `CodexArchive.layerConfig` over SQLite, its settings read through Effect
 * `Config` (here `ARCHIVE_URL` and `EVIDENCE_DIR`; any `ConfigProvider` the host installs, no env or TOML needed).
 * Nothing of the process changes unless asked: no worker threads, no V8 flags (see the README).
 */
import { SqliteArchive } from "@codex-archive/backend-sqlite"
import { CodexArchive } from "@codex-archive/core"
import { Config } from "effect"

export const archive = CodexArchive.layerConfig(
  SqliteArchive.layerConfig({ url: Config.string("ARCHIVE_URL"), create: Config.succeed(true) }),
  { evidenceDir: Config.string("EVIDENCE_DIR") }
)
