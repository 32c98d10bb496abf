/** The command tree: `codex archive <command>`, as the original tool's users type it. Exported for tests. */
import { CliConfig, Command, CommandDescriptor } from "@effect/cli"
import { Console, Effect } from "effect"
import * as BatchRestore from "./commands/BatchRestore.js"
import * as ConfigShow from "./commands/ConfigShow.js"
import * as Evidence from "./commands/Evidence.js"
import * as Gc from "./commands/Gc.js"
import * as HealthCheck from "./commands/HealthCheck.js"
import * as Init from "./commands/Init.js"
import * as List from "./commands/List.js"
import * as PruneRequest from "./commands/PruneRequest.js"
import * as Purge from "./commands/Purge.js"
import * as Restore from "./commands/Restore.js"
import * as Schema from "./commands/Schema.js"
import * as Show from "./commands/Show.js"
import * as Store from "./commands/Store.js"
import * as Verify from "./commands/Verify.js"
import * as Drivers from "./Drivers.js"
import * as ExitCode from "./ExitCode.js"
import * as Help from "./Help.js"
import * as Runtime from "./Runtime.js"

export const version = "0.1.0"

// The order help lists them in.
const archiveCommands = [
  Init.command,
  Schema.command,
  Store.command,
  List.command,
  Show.command,
  Restore.command,
  BatchRestore.command,
  Verify.command,
  PruneRequest.command,
  Purge.command,
  Gc.command,
  HealthCheck.command,
  ConfigShow.command,
  Evidence.command
] as const

const archive = Command.make("archive").pipe(
  Command.withDescription("Archive files into SQL with tombstone stubs and an evidence log; restore them verified"),
  Command.withSubcommands(archiveCommands)
)

export const codex = Command.make("codex").pipe(
  Command.withDescription("codex-archive: the `codex archive` commands"),
  Command.withSubcommands([archive])
)

/** The command tree as help walks it (@effect/cli does not expose a group's subcommands in their order). */
export const tree: Help.Node = {
  command: codex,
  children: [{
    command: archive,
    children: archiveCommands.map((command) =>
      command === Evidence.command ? { command, children: [{ command: Evidence.verify }] } : { command }
    )
  }]
}

const app = Command.run(codex, { name: "codex", version })

const isLogLevel = (arg: string) => arg === "--log-level" || arg.startsWith("--log-level=")

/** The commands an argument list names, as @effect/cli finds them: each the first argument naming a subcommand. */
export const commandPath = (args: ReadonlyArray<string>): Array<string> => {
  const path = ["codex"]
  let node = tree
  for (const arg of args) {
    const child = node.children?.find((c) => Help.find(c, [arg]) !== undefined)
    if (child === undefined) continue
    path.push(arg)
    node = child
  }
  return path
}

/**
 * Help (`--help`, or a group named without a subcommand) and `--version`, when @effect/cli's parser says that is what
 * was asked for; undefined for everything else. @effect/cli prints both with ANSI styles always, the usage line
 * without its parent commands, and the command list unwrapped; this prints them as Help.ts and Drivers.ts do.
 */
const builtIn = (args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    // --log-level is handled by @effect/cli before everything else and has no effect on help or the version.
    const rest = args.filter((a, i) => !isLogLevel(a) && !(i > 0 && args[i - 1] === "--log-level"))
    const path = commandPath(rest)
    const atGroup = Help.find(tree, path)?.children !== undefined
    if (!atGroup && !rest.some((a) => a === "--help" || a === "-h" || a === "--version")) return undefined
    const parsed = yield* CommandDescriptor.parse(codex.descriptor, ["codex", ...rest], CliConfig.defaultConfig).pipe(
      Effect.option
    )
    if (parsed._tag === "None") return undefined
    const directive = parsed.value
    const showHelp = directive._tag === "BuiltIn"
      ? directive.option._tag === "ShowHelp"
      : atGroup && directive.leftover.length === 0
    if (showHelp) {
      const doc = Help.document(tree, path, version)
      return doc === undefined ? undefined : Runtime.printLine(Help.render(doc, Help.styleOfStdout()).trimEnd())
    }
    if (directive._tag === "BuiltIn" && directive.option._tag === "ShowVersion") {
      return Effect.flatMap(Drivers.probeAll, (drivers) => Runtime.printLine(Drivers.describe(version, drivers)))
    }
    return undefined
  })

/** The options whose value is one of a list (@effect/cli's choices). */
const choiceFlags = new Set(["--reason", "--kind", "--log-format"])

/** The command line's `--flag value` (or `--flag=value`) pairs, in order. */
const pairsOf = (argv: ReadonlyArray<string>): Array<readonly [string, string]> =>
  argv.flatMap((arg, i): Array<readonly [string, string]> => {
    if (!arg.startsWith("--")) return []
    const eq = arg.indexOf("=")
    if (eq > 0) return [[arg.slice(0, eq), arg.slice(eq + 1)]]
    const next = argv[i + 1]
    return next === undefined ? [] : [[arg, next]]
  })

/**
 * @effect/cli says "'abc' is not a integer" or "Expected one of the following cases: …" without the flag: the flag is
 * the one the command line gave that value (issue: every error names its input).
 */
const namingFlag = (message: string, argv: ReadonlyArray<string>): string => {
  const number = /^'(.*)' is not a (integer|float)$/s.exec(message)
  if (number !== null) {
    const flag = pairsOf(argv).find(([, value]) => value === number[1])?.[0]
    return flag === undefined
      ? message
      : `${flag} '${number[1]}': expected ${number[2] === "integer" ? "a whole number" : "a number"}`
  }
  const choice = /^Expected one of the following cases: (.*)$/s.exec(message)
  if (choice !== null) {
    const cases = choice[1]!.split(",").map((c) => c.trim())
    const given = pairsOf(argv).find(([flag, value]) => choiceFlags.has(flag) && !cases.includes(value))
    return given === undefined ? message : `${given[0]} '${given[1]}': expected one of ${cases.join(", ")}`
  }
  return message
}

/** @effect/cli's usage errors (its only `Console.error` output), said as every other failure: one `codex: error:` line. */
const usageErrorLine = (args: ReadonlyArray<unknown>, argv: ReadonlyArray<string>): string =>
  `codex: error: ${
    ExitCode.messageOf(namingFlag(args.map(String).join(" ").replace(/\u001b\[[0-9;]*m/g, "").trim(), argv))
  }\n`

/** Only before a handler runs: a command's own logs go through `Console.error` too, and are not errors. */
const withUsageErrorLines = <A, E, R>(self: Effect.Effect<A, E, R>, argv: ReadonlyArray<string>) =>
  Console.consoleWith((console) => {
    const error = (...args: ReadonlyArray<unknown>) =>
      Runtime.handlerStarted.value
        ? console.unsafe.error(...args)
        : void process.stderr.write(usageErrorLine(args, argv))
    return Effect.withConsole(self, {
      ...console,
      error: (...args) => Effect.sync(() => error(...args)),
      unsafe: { ...console.unsafe, error }
    })
  })

/**
 * @effect/cli's `--wizard` is not offered: its yes/no questions start at the flag's "on", so Enter through them gave
 * `--force --allow-outside --debug`; a closed stdin hung it, quitting it exited 0, and its folder picker read names
 * that are not UTF-8 as U+FFFD (an attack review).
 */
const noWizard = new Runtime.CliExit({
  code: 2,
  message: "--wizard is not offered: its yes/no questions start at the flag's 'on' (--force, --allow-outside); give " +
    "the command's arguments (see --help)"
})

/** The options whose value is a whole number (@effect/cli's integers). */
const wholeNumberFlags = new Set(["--limit", "--concurrency"])

/**
 * A whole number as written in digits: @effect/cli reads one as JavaScript's `Number` does, so `--limit 0x10` listed
 * 16 items and `1e3` or ` 3` passed too.
 */
const notWholeNumber = (args: ReadonlyArray<string>): Runtime.CliExit | undefined => {
  const given = pairsOf(args).find(([flag, value]) => wholeNumberFlags.has(flag) && !/^-?[0-9]+$/.test(value))
  return given === undefined
    ? undefined
    : new Runtime.CliExit({ code: 2, message: `${given[0]} '${given[1]}': expected a whole number, in digits` })
}

/** Runs the CLI on a full argv (`node`, the script, then the arguments). */
export const run = (argv: ReadonlyArray<string>) => {
  const args = argv.slice(2)
  const badNumber = notWholeNumber(args)
  return args.includes("--wizard")
    ? Effect.fail(noWizard)
    : badNumber !== undefined
    ? Effect.fail(badNumber)
    : Effect.flatMap(builtIn(args), (own) => own ?? withUsageErrorLines(app(argv), args))
}
