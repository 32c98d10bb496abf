/** `--metrics-out FILE` for restore commands: the final metric values in the Prometheus text format, written last. */
import { FileOps, Guarded, Metrics } from "@codex-archive/core"
import { Options } from "@effect/cli"
import { Effect, Option } from "effect"
import * as path from "node:path"
import * as Runtime from "./Runtime.js"

export const option = Options.text("metrics-out").pipe(
  Options.withPseudoName("FILE"),
  Options.withDescription(
    "Write the final metric values (Prometheus text format) to this file, also when the command fails"
  ),
  Options.optional
)

// Set when the command refused the file up front: its error line says so, and nothing is written after it.
let refused = false

/**
 * Refuses, before any work, a file that is one of the command's guarded files (`Runtime.guarded`) or of `others` (the
 * restore's own output): a restore of out.txt with `--metrics-out out.txt` restored it, then replaced it with metrics.
 */
export const check = (
  file: Option.Option<string>,
  others: ReadonlyArray<Guarded.Guarded> = []
): Effect.Effect<void, Runtime.CliExit> =>
  Runtime.checkOutputFile("--metrics-out", Option.getOrUndefined(file), [...Runtime.guarded(), ...others]).pipe(
    Effect.tapError(() => Effect.sync(() => void (refused = true)))
  )

/** The file as one a batch's entries may not restore over, as they may not over its results file. */
export const guardOf = (file: Option.Option<string>): ReadonlyArray<Guarded.Guarded> =>
  Option.isSome(file) ? [{ file: file.value, what: "the --metrics-out file" }] : []

/**
 * Refuses a target that is not a regular file before any work, runs `effect`, then writes the metrics file whatever
 * its outcome; a write failure is a warning, not the result.
 */
export const writeAfter =
  (file: Option.Option<string>) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | Runtime.CliExit, R> => {
    if (Option.isNone(file)) return effect
    const write = Effect.flatMap(Metrics.prometheus(), (text) =>
      Effect.try(() => {
        const target = path.resolve(file.value)
        // Written whatever the outcome, even a refusal of this very file: never over the archive or its log.
        const refusal = Guarded.refusal(target, Runtime.guarded())
        if (refusal !== undefined) throw refusal
        FileOps.makeFolders(path.dirname(target))
        FileOps.writeFileAtomic(target, text)
      }).pipe(Effect.catchAll((e) =>
        // On stderr as the CLI's other warnings: Effect's default logger (no command's logger is left here) wrote a
        // logfmt line to stdout, mixed into the results.
        Runtime.note(`codex: warning: cannot write --metrics-out ${file.value}: ${(e.error as Error).message}`)
      )))
    const unlessRefused = Effect.suspend(() => (refused ? Effect.void : write))
    return Effect.zipRight(Runtime.checkOutputFile("--metrics-out", file.value), Effect.ensuring(effect, unlessRefused))
  }
