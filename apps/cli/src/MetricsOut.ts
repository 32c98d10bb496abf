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
        const refused = Guarded.refusal(target, Runtime.guarded())
        if (refused !== undefined) throw refused
        FileOps.makeFolders(path.dirname(target))
        FileOps.writeFileAtomic(target, text)
      }).pipe(Effect.catchAll((e) =>
        Effect.logWarning(`cannot write --metrics-out ${file.value}: ${(e.error as Error).message}`)
      )))
    return Effect.zipRight(Runtime.checkOutputFile("--metrics-out", file.value), Effect.ensuring(effect, write))
  }
