/** The `codex` binary: runs the command tree on Node and turns failures into one line and an exit code. */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect, Exit } from "effect"
import * as Cli from "./Cli.js"
import * as ExitCode from "./ExitCode.js"

const program = Effect.suspend(() => Cli.run(process.argv)).pipe(
  Effect.catchAll((error) =>
    Effect.sync(() => {
      process.exitCode = ExitCode.codeOf(error)
      // @effect/cli has already explained a usage error together with the help.
      if ((error as { _tag?: string })._tag !== "ValidationError") {
        process.stderr.write(`codex: error: ${ExitCode.messageOf(error)}\n`)
      }
    })
  ),
  Effect.provide(NodeContext.layer)
)

NodeRuntime.runMain(program, {
  disablePrettyLogger: true,
  disableErrorReporting: true,
  teardown: (exit, onExit) => onExit(Exit.isFailure(exit) ? (Exit.isInterrupted(exit) ? 130 : 1) : Number(process.exitCode ?? 0))
})
