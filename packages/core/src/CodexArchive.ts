/**
 * The whole archive in one layer: a backend's store (passed in as a layer, so the core depends on no driver), the
 * retry policy, evidence, archiver, restorer with its settings, and metrics. A program starts in one line:
 * `program.pipe(Effect.provide(CodexArchive.layer({ store: SqliteArchive.layer({ url, create: true }), evidenceDir })))`.
 */
import { Config as EffectConfig, type ConfigError, Effect, Layer } from "effect"
import * as Archiver from "./Archiver.js"
import type { ArchiveStore } from "./ArchiveStore.js"
import type { ArchiveConfig } from "./Config.js"
import * as Evidence from "./Evidence.js"
import * as Metrics from "./Metrics.js"
import * as Restorer from "./Restorer.js"
import * as Retry from "./Retry.js"

export interface Settings {
  /** Where the evidence log (`archive_ops.jsonl`) goes. */
  readonly evidenceDir: string
  /** The evidence chain's HMAC key and the like (`Evidence.Options`). */
  readonly evidence?: Evidence.Options | undefined
  /** The retry policy of every database call; default `Retry.defaults`. */
  readonly retry?: Retry.RetrySettings | undefined
  /** Timings, batch evidence and concurrency of restores; default `Restorer.defaultSettings`. */
  readonly restore?: Partial<Restorer.Settings> | undefined
}

export interface Options<E, R> extends Settings {
  /** The backend's store: `SqliteArchive.layer(...)`, `PgArchive.layerFromClient(...)`, the test kit's, ... */
  readonly store: Layer.Layer<ArchiveStore, E, R>
}

/** Every service the archive offers; the host's own services (a `SqlClient` among them) are never among them. */
export type Services =
  | ArchiveStore
  | Retry.RetryPolicy
  | Evidence.Evidence
  | Archiver.Archiver
  | Restorer.Restorer
  | Restorer.RestoreSettings
  | Metrics.ArchiveMetrics

/** The services over the given store; the store gets the retry policy from here, whatever else it needs from the host. */
export const layer = <E, R>(options: Options<E, R>): Layer.Layer<Services, E, Exclude<R, Retry.RetryPolicy>> => {
  const retry = Retry.layer(options.retry ?? Retry.defaults)
  const base = Layer.mergeAll(
    options.store.pipe(Layer.provideMerge(retry)),
    Evidence.layer(options.evidenceDir, options.evidence ?? {}),
    Restorer.settingsLayer(options.restore ?? {}),
    Metrics.layer
  )
  return Layer.mergeAll(Archiver.layer, Restorer.layer).pipe(Layer.provideMerge(base))
}

/**
 * `layer` with its settings read from Effect `Config`, e.g.
 * `CodexArchive.layerConfig(store, { evidenceDir: Config.string("EVIDENCE_DIR") })`.
 */
export const layerConfig = <E, R>(
  store: Layer.Layer<ArchiveStore, E, R>,
  settings: EffectConfig.Config.Wrap<Settings>
): Layer.Layer<Services, E | ConfigError.ConfigError, Exclude<R, Retry.RetryPolicy>> =>
  Layer.unwrapEffect(Effect.map(EffectConfig.unwrap(settings), (s) => layer({ ...s, store })))

/** The settings of a configuration loaded from its file, environment and flags (`Config.load`), as the CLI runs. */
export const settingsOf = (config: ArchiveConfig): Settings => ({
  evidenceDir: config.evidence.dir,
  evidence: config.evidence,
  retry: config.retry,
  restore: Restorer.settingsOf(config)
})
