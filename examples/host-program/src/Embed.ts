/**
 * A whole host program around the archive, as the README's embedding guide walks through it: the layers composed in
 * code (no env, no TOML), the host's own logger behind the redaction wrapper, a store and a restore, the archive's
 * metrics read back, and its failures handled by tag.
 */
import { PgArchive } from "@codex-archive/backend-postgres"
import { SqliteArchive } from "@codex-archive/backend-sqlite"
import { Archiver, CodexArchive, Logging, Metrics, Restorer } from "@codex-archive/core"
import { Effect, Layer, Logger } from "effect"
import * as path from "node:path"

export interface Settings {
  /** `sqlite:///...` or `postgres://user:password@host/db`: the one place a credential may be. */
  readonly url: string
  /** The folder the program archives from (`docs/` inside it) and restores into (`restored/`). */
  readonly root: string
}

/** Store, retry, evidence, archiver, restorer and metrics over the backend the URL names; settings in code. */
export const archive = (settings: Settings) =>
  CodexArchive.layer({
    store: settings.url.startsWith("postgres")
      ? PgArchive.layer({ url: settings.url, create: true })
      : SqliteArchive.layer({ url: settings.url, create: true }),
    evidenceDir: path.join(settings.root, ".codex/evidence"),
    retry: { enabled: true, max_attempts: 3, initial_delay: 0.2, max_delay: 1, multiplier: 2, jitter: 0.1, seed: null }
  })

/** The host's own logger (here: lines to a function), wrapped so no credential of the URL can reach it. */
export const logger = (settings: Settings, sink: (line: string) => void) =>
  Logger.replace(
    Logger.defaultLogger,
    Logging.redacting(
      Logger.make(({ logLevel, message }) => sink(`${logLevel.label} ${[message].flat().join(" ")}`)),
      { secrets: [settings.url] }
    )
  )

/** Archives `docs/`, restores every file into `restored/`, and returns what a host would report. */
export const program = (settings: Settings) =>
  Effect.gen(function*() {
    const archiver = yield* Archiver.Archiver
    const restorer = yield* Restorer.Restorer
    const report = yield* archiver.store(["docs"], {
      repo: "acme/app",
      actor: "example",
      commit: "HEAD",
      reason: "dead",
      kind: "doc",
      cwd: settings.root
    })
    // Logged with the URL on purpose: the wrapper, not this line, keeps the password out of the host's logs.
    yield* Effect.logInfo(`stored ${report.count} files into ${settings.url}`)
    for (const stored of report.stored) {
      const output = path.join(settings.root, "restored", stored.path)
      yield* restorer.restore({ tombstone: stored.tombstone, output, actor: "example" })
    }
    const metrics = yield* Metrics.prometheus()
    const restored = /^codex_archive_restores_total(?:\{[^}]*\})? (\d+)/m.exec(metrics)?.[1]
    return { stored: report.count, restored: Number(restored ?? 0) }
  }).pipe(
    // Every failure is a tagged error: handle the ones the host can act on, let the rest fail the program.
    Effect.catchTags({
      InputError: (e) => Effect.fail(`nothing to archive: ${e.message}`),
      TombstoneNotFound: (e) => Effect.fail(`the archive lost ${e.tombstone}`)
    })
  )

/** The program with its layers: what `bin.ts` runs and the bundle ships. */
export const run = (settings: Settings, sink: (line: string) => void) =>
  program(settings).pipe(Effect.provide(Layer.merge(archive(settings), logger(settings, sink))))
