/**
 * Entry point of the bench bundle: runs the command line on Node, logs to stderr. A failure is one `bench: error:`
 * line on stderr (the tables on stdout stay clean): exit 2 for a bad flag, 1 for a run that failed.
 */
import * as ValidationError from "@effect/cli/ValidationError"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Effect, Exit, Logger } from "effect"
import * as Cli from "./Cli.js"

/** Failures of what the user typed, not of the run. */
const usage = new Set(["BadFlag", "CorpusSpecError", "UnknownBackend"])

const oneLine = (error: unknown): string =>
  (error instanceof Error || (typeof error === "object" && error !== null && "message" in error)
    ? String((error as { message: unknown }).message)
    : String(error)).split("\n").map((l) => l.trim()).filter(Boolean).join(" ")

const program = Effect.suspend(() => Cli.run(process.argv)).pipe(
  Effect.catchAllCause((cause) =>
    Cause.isInterruptedOnly(cause) ? Effect.failCause(cause) : Effect.sync(() => {
      const error = Cause.squash(cause)
      // @effect/cli has already printed its own usage errors (unknown flag, bad value).
      if (ValidationError.isValidationError(error)) {
        process.exitCode = 2
        return
      }
      const tag = (error as { _tag?: unknown } | null)?._tag
      process.exitCode = typeof tag === "string" && usage.has(tag) ? 2 : 1
      process.stderr.write(`bench: error: ${oneLine(error)}\n`)
    })
  ),
  Effect.provide(NodeContext.layer),
  Effect.provide(Logger.replace(Logger.defaultLogger, Logger.withConsoleError(Logger.logfmtLogger)))
)

NodeRuntime.runMain(program, {
  disablePrettyLogger: true,
  disableErrorReporting: true,
  teardown: (exit, onExit) =>
    onExit(Exit.isFailure(exit) ? (Exit.isInterrupted(exit) ? 130 : 1) : Number(process.exitCode ?? 0))
})
