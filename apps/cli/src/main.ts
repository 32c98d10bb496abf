/** The `codex` binary: runs the command tree on Node and turns failures into one line and an exit code. */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Effect, Exit } from "effect"
import * as Cli from "./Cli.js"
import * as ExitCode from "./ExitCode.js"
import * as Runtime from "./Runtime.js"
import * as Utf8Args from "./Utf8Args.js"

const argv = Runtime.hoistLogLevel(process.argv)

// A stdout write error is the write's to report (Runtime.printText): a full disk is one line and exit 1, a reader that
// stopped early (EPIPE) is no error. Unwatched, the stream's error event ended the process with a stack trace.
Runtime.watchStdout()
// stderr is where failures are said: one that fails (a terminal hung up) leaves nowhere to say so, and must not end a
// batch midway with an uncaught error while it finishes its files and saves its results.
process.stderr.on("error", () => {})

// SIGHUP (the terminal or SSH session went away) stops a command as Ctrl-C and SIGTERM do, handled by the runtime
// (runMain below listens to those two only): a batch finishes its files in flight, saves its results and says why it
// stopped. Unhandled, Node ended at once (129), temporary files left and results behind.
process.on("SIGHUP", () => void process.emit("SIGTERM", "SIGTERM"))
// A second signal quits at once, as Node's default did, but says so: the default ended the process without a line
// (130), a batch waiting on a stalled server leaving temporary files and no evidence line of what it had recorded.
// Once the command has ended (the runtime's own listeners gone), a first signal quits too.
let signals = 0
let running = true
/** What a command quit at once leaves, for the line that says so. */
const leftUnfinished = (command: string | undefined): string => {
  switch (command) {
    case "batch-restore":
      return " (its temporary .codex-restore.tmp files, its evidence lines); --resume reads the results as last saved"
    case "restore":
      return " (its temporary .codex-restore.tmp file, its evidence line)"
    case "store":
      return " (the group being stored: its stubs and their .codex.tmp temporaries, its evidence lines; a " +
        "--manifest-out's .codex-manifest.tmp temporary); files not yet stubbed are as they were"
    default:
      return ""
  }
}
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (++signals < 2 && running) return
    process.stderr.write(
      signals < 2
        ? "codex: error: interrupted\n"
        : `codex: error: interrupted again: quit at once, what was in flight left unfinished${
          leftUnfinished(argv[argv.indexOf("archive") + 1])
        }\n`
    )
    process.exit(signal === "SIGINT" ? 130 : 143)
  })
}

const program = Effect.suspend(() => Cli.run(argv)).pipe(
  Effect.catchAll((error) =>
    Effect.sync(() => {
      process.exitCode = ExitCode.codeOf(error)
      // @effect/cli has already explained a usage error together with the help.
      if (!ExitCode.isUsageError(error)) {
        process.stderr.write(`codex: error: ${ExitCode.messageOf(error)}\n`)
      }
    })
  ),
  // A defect (a driver that threw, a bug) must not end the process silently: one line, exit 1.
  Effect.catchAllCause((cause) =>
    Cause.isInterruptedOnly(cause) ? Effect.failCause(cause) : Effect.sync(() => {
      process.exitCode = 1
      process.stderr.write(`codex: error: ${ExitCode.messageOf(Cause.squash(cause))}\n`)
    })
  ),
  Effect.onInterrupt(() => Effect.sync(() => process.stderr.write("codex: error: interrupted\n"))),
  Effect.provide(NodeContext.layer)
)

// Refused before anything runs: a name that is not UTF-8 would be read as another (see Utf8Args).
const refused = Utf8Args.refusal(process.argv, process.env)
if (refused !== undefined) {
  process.stderr.write(`codex: error: ${refused}\n`)
  process.exitCode = 2
} else {
  NodeRuntime.runMain(program, {
    disablePrettyLogger: true,
    disableErrorReporting: true,
    teardown: (exit, onExit) => {
      running = false
      onExit(Exit.isFailure(exit) ? (Exit.isInterrupted(exit) ? 130 : 1) : Number(process.exitCode ?? 0))
    }
  })
}
