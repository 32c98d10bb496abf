/**
 * What every command shares: the options that configure the run, loading the configuration from its sources,
 * composing the layers (logger, retry, evidence, the configured backend loaded by dynamic `import()`, archiver,
 * restorer), and turning typed failures into one-line messages and exit codes (2 bad input, 1 failed operation).
 */
import {
  type ArchiveStore,
  CodexArchive,
  Config,
  Evidence,
  FileOps,
  Guarded,
  Logging,
  Printable,
  Redact,
  type Retry,
  ServerUrl,
  Tombstone
} from "@codex-archive/core"
import { Options } from "@effect/cli"
import { Data, Effect, Layer, Option, Redacted } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { pipeline } from "node:stream/promises"
import * as Backends from "./Backends.js"
import * as Utf8Args from "./Utf8Args.js"

/** A failure the CLI reports itself: one line on stderr and this exit code. */
export class CliExit extends Data.TaggedError("CliExit")<{ readonly code: 1 | 2; readonly message: string }> {}

export const shared = {
  // Text, not Options.file: the configuration checks the file (a folder, device or FIFO is exit 2 naming the option).
  configFile: Options.text("config-file").pipe(
    Options.withPseudoName("FILE"),
    Options.withDescription("TOML configuration file (default: $CODEX_ARCHIVE_CONFIG, then .codex/archive.toml)"),
    Options.optional
  ),
  url: Options.text("url").pipe(
    Options.withPseudoName("URL"),
    Options.withDescription("Archive URL: sqlite:///PATH, postgres://..., mariadb://... (overrides config)"),
    Options.optional
  ),
  logFormat: Options.choice("log-format", ["text", "json"]).pipe(
    Options.withDescription("Log lines on stderr as text or JSON (default: logging.format, then text)"),
    Options.optional
  ),
  strict: Options.boolean("strict").pipe(
    Options.withDescription(
      "Refuse what would be a configuration warning (also CODEX_ARCHIVE_STRICT=1, or strict = true in the file)"
    )
  )
} as const

export type Shared = {
  readonly configFile: Option.Option<string>
  readonly url: Option.Option<string>
  readonly logFormat: Option.Option<string>
  readonly strict?: boolean
}

/** Where `--log-level` sits in argv (either `--log-level X` or `--log-level=X`), and its value. */
const logLevelArg = (argv: ReadonlyArray<string>) => {
  const at = argv.findIndex((a, i) => i >= 2 && (a === "--log-level" || a.startsWith("--log-level=")))
  if (at < 0) return undefined
  const inline = argv[at]!.includes("=")
  return {
    at,
    width: inline || argv[at + 1] === undefined ? 1 : 2,
    value: inline ? argv[at]!.split("=")[1] : argv[at + 1]
  }
}

/** @effect/cli rejects `--log-level` after a subcommand's option value; it is accepted anywhere before the command. */
export const hoistLogLevel = (argv: ReadonlyArray<string>): ReadonlyArray<string> => {
  const arg = logLevelArg(argv)
  if (arg === undefined) return argv
  const { at, width } = arg
  return [...argv.slice(0, 2), ...argv.slice(at, at + width), ...argv.slice(2, at), ...argv.slice(at + width)]
}

/**
 * `--log-level` is a built-in global option of @effect/cli, consumed before our handlers run; we read it from argv
 * so that it also takes its place above the config file and environment.
 */
export const builtinLogLevel = (argv: ReadonlyArray<string>): string | undefined => {
  const value = logLevelArg(argv)?.value
  const aliases: Record<string, string> = { all: "debug", trace: "debug", fatal: "error", none: "error" }
  return value === undefined ? undefined : aliases[value] ?? value
}

/** `--by` and `--actor` both name the actor; then `CODEX_ACTOR`, then the OS user. */
export const actorOption = Options.text("by").pipe(
  Options.withAlias("actor"),
  Options.withPseudoName("NAME"),
  Options.withDescription("Who performs the action (default: $CODEX_ACTOR, then the OS user)"),
  Options.optional
)

export const resolveActor = (actor: Option.Option<string>): string =>
  Option.getOrUndefined(actor)?.trim() || process.env.CODEX_ACTOR?.trim() || safeUser()

const safeUser = () => {
  try {
    return os.userInfo().username || "codex"
  } catch {
    return process.env.USER ?? "codex"
  }
}

/** A bare path (no scheme, no user part) is a SQLite file, as the original reads it: no secret to scrub from every line. */
const registerUrl = (value: string | undefined) => {
  if (value !== undefined && (value.includes("://") || value.includes("@"))) Redact.register(value)
}

/**
 * Set once a command's handler loads its configuration: from then on stderr carries the command's logs, which Effect's
 * logger writes through `Console.error`; before, only @effect/cli's usage errors do (see `Cli.run`).
 */
export const handlerStarted = { value: false }

/** Loads the composed configuration; flags win over the environment, which wins over the file. */
export const loadConfig = (opts: Shared, extraFlags: ReadonlyArray<readonly [string, string, unknown]> = []) =>
  Effect.gen(function*() {
    handlerStarted.value = true
    // Every line this process prints scrubs the URL's secrets, even one that fails before the config is whole.
    registerUrl(Option.getOrUndefined(opts.url))
    registerUrl(process.env.CODEX_ARCHIVE_URL)
    const cwd = Utf8Args.workingFolder.path()
    if (cwd === undefined) {
      // Node's own line was `ENOENT: no such file or directory, uv_cwd`, which names neither the folder nor the fix.
      return yield* new CliExit({
        code: 2,
        message: "the current folder no longer exists (it was removed after this shell entered it): " +
          "cd to a folder that exists and run the command again"
      })
    }
    const loaded = yield* Config.load({
      cwd,
      env: process.env,
      configFile: Option.getOrUndefined(opts.configFile),
      flags: [
        ["backend.url", "--url", Option.getOrUndefined(opts.url)],
        ["logging.level", "--log-level", builtinLogLevel(process.argv)],
        ["logging.format", "--log-format", Option.getOrUndefined(opts.logFormat)],
        // Absent unless given: `--strict` turns strict mode on, never off.
        ["strict", "--strict", opts.strict === true ? true : undefined],
        ...extraFlags
      ]
    })
    registerUrl(Redacted.value(loaded.config.backend.url))
    // Once per run, before anything else is logged, whatever the log level: the user's config is not what is used.
    for (const warning of loaded.warnings) {
      process.stderr.write(`codex: warning: ${Printable.escape(Redact.text(warning.message))}\n`)
    }
    return loaded
  }).pipe(Effect.mapError((e) => new CliExit({ code: 2, message: e.message })))

/** The secrets of the backend URL, so the logger and error messages can scrub them even where no URL is around. */
export const secretsOf = (config: Config.ArchiveConfig): ReadonlyArray<string> =>
  Redact.secretsOf(Redacted.value(config.backend.url))

export const loggerLayer = (config: Config.ArchiveConfig) =>
  Logging.layer({ level: config.logging.level, format: config.logging.format, secrets: secretsOf(config) })

/** A server URL its backend cannot use is bad input (exit 2), said before any driver is loaded or connection tried. */
export const checkServerUrl = (config: Config.ArchiveConfig): Effect.Effect<void, CliExit> => {
  const backend = config.backend.backend
  if (backend === "sqlite") return Effect.void
  const url = Redacted.value(config.backend.url)
  const problem = ServerUrl.problemOf(url, ServerUrl.kinds[backend])
  return problem === undefined
    ? Effect.void
    : Effect.fail(new CliExit({ code: 2, message: `backend.url: ${Redact.url(url) || url}: ${problem}` }))
}

/** The configured backend's layer, its URL not checked; only its driver is loaded (a SQLite user never loads pg). */
const storeLayer = (config: Config.ArchiveConfig, create: boolean, readOnly: boolean) =>
  Effect.map(Backends.load(config.backend.backend), (backend) => backend.layer(config, create, readOnly))

/** The configured backend's layer, once its URL is known to be usable; only its driver is loaded. */
export const backendLayer = (
  config: Config.ArchiveConfig,
  create: boolean,
  readOnly = false
): Effect.Effect<
  Layer.Layer<ArchiveStore.ArchiveStore, ArchiveStore.NotAnArchive | ArchiveStore.StoreError, Retry.RetryPolicy>,
  CliExit
> => Effect.zipRight(checkServerUrl(config), storeLayer(config, create, readOnly))

/** What a command may use: the archive's services and the configuration they were made from. */
export type ArchiveServices = CodexArchive.Services | Config.ArchiveConfigTag

/** Every service a command may need, for the given configuration: `CodexArchive.layer` over the configured backend. */
export const archiveLayer = (config: Config.ArchiveConfig, create: boolean, readOnly = false) =>
  Layer.unwrapEffect(
    Effect.map(storeLayer(config, create, readOnly), (store) =>
      Layer.merge(
        CodexArchive.layer({ store, ...CodexArchive.settingsOf(config) }),
        Layer.succeed(Config.ArchiveConfigTag, config)
      ))
  )

/** Runs a command body with the archive services of the loaded configuration. */
export const withArchive = <A, E>(
  opts: Shared,
  options: {
    readonly create: boolean
    /** The command never writes to the archive (it may still append evidence): a read-only archive file is fine. */
    readonly readOnly?: boolean
    readonly flags?: ReadonlyArray<readonly [string, string, unknown]>
    /** Runs when the archive cannot be opened at all (e.g. to leave a RESTORE_FAIL line); the failure still stands. */
    readonly onOpenFailure?: (
      config: Config.ArchiveConfig,
      error: ArchiveStore.NotAnArchive | ArchiveStore.StoreError
    ) => Effect.Effect<void>
    /** Usage checked against the loaded configuration, before the archive is opened (or created). */
    readonly check?: (config: Config.ArchiveConfig) => Effect.Effect<void, CliExit>
  },
  body: (config: Config.ArchiveConfig) => Effect.Effect<A, E, ArchiveServices>
): Effect.Effect<A, E | CliExit | ArchiveStore.NotAnArchive | ArchiveStore.StoreError> =>
  Effect.gen(function*() {
    const loaded = yield* loadConfig(opts, options.flags)
    guardedNow = guardedOf(loaded)
    if (options.check !== undefined) yield* options.check(loaded.config)
    yield* checkServerUrl(loaded.config)
    const program = Effect.scoped(Effect.gen(function*() {
      const services = yield* Layer.build(archiveLayer(loaded.config, options.create, options.readOnly)).pipe(
        Effect.tapError((error) => options.onOpenFailure?.(loaded.config, error) ?? Effect.void)
      )
      return yield* Effect.provide(body(loaded.config), services)
    }))
    return yield* program.pipe(Effect.provide(loggerLayer(loaded.config)))
  })

/**
 * An output file option (`--results`, `--metrics-out`, `--manifest-out`) may create a file or replace a regular
 * one, nothing else, and never one of `guarded` (`guardedOf`): checked before any work, so a symlink, a device or the
 * archive itself given by mistake is refused with exit 2.
 */
export const checkOutputFile = (
  option: string,
  file: string | undefined,
  guarded: ReadonlyArray<Guarded.Guarded> = []
): Effect.Effect<void, CliExit> => {
  const target = file === undefined ? undefined : path.resolve(file)
  const refused = target === undefined
    ? undefined
    : FileOps.notReplaceable(target) ?? Guarded.refusal(target, guarded)
  if (refused !== undefined) return Effect.fail(new CliExit({ code: 2, message: `${option} ${refused.message}` }))
  // A stub is what finds its file again: `batch-restore --metrics-out` naming an entry's stub failed that entry, then
  // wrote the metrics over the stub (a second attack review).
  if (target !== undefined && Tombstone.isStubFile(target)) {
    return Effect.fail(
      new CliExit({ code: 2, message: `${option} ${target}: is a tombstone stub; refusing to write over it` })
    )
  }
  return Effect.void
}

// What this command's outputs may not replace: the loaded configuration's files (`guardedOf`), then what the command
// reads or writes besides (`guard`). Kept for outputs written after the command, whatever its outcome (--metrics-out).
let guardedNow: ReadonlyArray<Guarded.Guarded> = []
/** The files this command's outputs may not replace (none before it loads a configuration). */
export const guarded = (): ReadonlyArray<Guarded.Guarded> => guardedNow
/** Adds files of this command (its manifest, its other outputs) to those its outputs may not replace. */
export const guard = (files: ReadonlyArray<Guarded.Guarded>) =>
  Effect.sync(() => void (guardedNow = [...guardedNow, ...files]))

/**
 * The files of a loaded configuration no output may replace and no store archives: a SQLite archive and its journals,
 * the evidence log and its lock, the evidence key file (stubbed, the intact log verified as forged), and the
 * configuration file itself (stubbed, it read as an empty one, and the next command opened the default archive).
 */
export const guardedOf = ({ config, file }: Config.Loaded): ReadonlyArray<Guarded.Guarded> => [
  ...(config.backend.path === null ? [] : Guarded.embeddedDatabase(config.backend.path)),
  ...Guarded.evidenceLog(Evidence.fileIn(config.evidence.dir)),
  ...(config.evidence.hmac_key_file === null
    ? []
    : [{ file: config.evidence.hmac_key_file, what: "the evidence key file" }]),
  ...(file === undefined ? [] : [{ file, what: "the configuration file" }])
]

/** Runs a command body that needs only the configuration and the logger. */
export const withConfig = <A, E, R>(
  opts: Shared,
  body: (loaded: Config.Loaded) => Effect.Effect<A, E, R>,
  flags: ReadonlyArray<readonly [string, string, unknown]> = []
): Effect.Effect<A, E | CliExit, R> =>
  Effect.flatMap(loadConfig(opts, flags), (loaded) => body(loaded).pipe(Effect.provide(loggerLayer(loaded.config))))

/**
 * stdout refused a write (a full disk, a file closed under us): what the command printed is lost, so it failed (exit
 * 1), whatever it did before, which a command says in the line (`afterDone`).
 */
export class StdoutError extends Data.TaggedError("StdoutError")<{ readonly message: string }> {}

// The first error stdout reported: every later write fails with ERR_STREAM_DESTROYED, which says nothing.
let stdoutFailed: NodeJS.ErrnoException | undefined
/** Kept for every write's callback to read; also, an error event with no listener ends Node with a stack trace. */
export const watchStdout = () =>
  void process.stdout.on("error", (error: NodeJS.ErrnoException) => void (stdoutFailed ??= error))

/**
 * What a failed stdout write means. EPIPE, a reader that stopped early (`codex archive list | head -1`), is not a
 * failure: the rest of stdout is dropped and the command finishes (files, evidence, exit code) as it would have, quiet
 * as `head`'s writers are when SIGPIPE ends them, but never cut short midway through a restore (Node ignores SIGPIPE).
 */
const stdoutOutcome = (error: Error | null | undefined): Effect.Effect<void, StdoutError> => {
  if (error == null) return Effect.void
  stdoutFailed ??= error
  return stdoutFailed.code === "EPIPE"
    ? Effect.void
    : Effect.fail(new StdoutError({ message: `cannot write to stdout: ${stdoutFailed.message}` }))
}

/**
 * Once the command's work is done and recorded (`done` says what it was), a stdout that fails says so in its line:
 * the user must not retry a restore that happened.
 */
export const afterDone = (done: () => string) => <A, E, R>(print: Effect.Effect<A, E | StdoutError, R>) =>
  Effect.catchIf(
    print,
    (e): e is StdoutError => e instanceof StdoutError,
    (e) => Effect.fail(new CliExit({ code: 1, message: `${done()}, but ${e.message}` }))
  )

/**
 * Results go to stdout, waiting until the pipe has taken all of it: a batch summary can be megabytes, and a non-zero
 * exit or a signal ends the process with `process.exit`, which would cut off a pending write.
 */
export const printLine = (line: string) => printText(line + "\n")
/** A line that says what a command did: a stdout that cannot take it still says it, in the error (`afterDone`). */
export const printDone = (line: string) => printLine(line).pipe(afterDone(() => line))
/** A value as the JSON this process prints: pretty as the original's, a C1 control in a string as its escape. */
export const jsonText = (value: unknown): string => Printable.escapeJson(JSON.stringify(value, null, 2))
/** One JSON document, pretty as the original prints them. */
export const printJson = (value: unknown) => printLine(jsonText(value))
/** Human notes go to stderr, never mixed into results. */
export const note = (line: string) => Effect.sync(() => process.stderr.write(line + "\n"))

/** A file's content on stdout, streamed (a batch's summary: megabytes at a million items). */
export const printFile = (file: string): Effect.Effect<void, StdoutError> =>
  Effect.flatMap(
    Effect.promise(() =>
      pipeline(fs.createReadStream(file), process.stdout, { end: false }).then(() => undefined, (e: Error) => e)
    ),
    // A failure with no stdout error is the file's own (a temporary file we wrote): a defect, as it always was.
    (error) => error === undefined || stdoutFailed !== undefined ? stdoutOutcome(error) : Effect.die(error)
  )
/** Text on stdout as it is (no newline added). */
export const printText = (text: string) =>
  Effect.suspend(() =>
    stdoutFailed === undefined
      ? Effect.async<void, StdoutError>((resume) =>
        void process.stdout.write(text, (error) => resume(stdoutOutcome(error)))
      )
      : stdoutOutcome(stdoutFailed)
  )

/** Elements of a JSON list as `printJson` prints them inside the whole, `depth` deep; `first`: none came before. */
export const jsonElements = (values: ReadonlyArray<unknown>, first: boolean, depth: number) => {
  const pad = "\n" + " ".repeat(2 * depth)
  return values.map((v, i) => (first && i === 0 ? "" : ",") + pad + jsonText(v).replaceAll("\n", pad))
    .join("")
}

/**
 * A long JSON list kept in a temporary file, a group of elements at a time, then printed in place inside its document
 * exactly as `printJson` would print the whole: memory holds a group, and a command failing midway prints nothing.
 * `depth` is the list's nesting in the document (its elements are indented `2 * depth` spaces).
 */
export const listFile = (key: string, depth: number) =>
  Effect.gen(function*() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "codex-list-"))
    yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
    const file = path.join(dir, "list.json")
    const pad = "\n" + " ".repeat(2 * depth)
    let count = 0
    return {
      append: (values: ReadonlyArray<unknown>) =>
        Effect.sync(() => {
          fs.appendFileSync(file, jsonElements(values, count === 0, depth))
          count += values.length
        }),
      /** `document` holds the list as `[]` under `key` (and no other such key). */
      print: (document: unknown) =>
        Effect.gen(function*() {
          const text = jsonText(document)
          if (count === 0) return yield* printLine(text)
          const at = text.indexOf(`"${key}": []`) + `"${key}": [`.length
          yield* printText(text.slice(0, at))
          yield* printFile(file)
          yield* printLine(`${pad.slice(0, -2)}${text.slice(at)}`)
        })
    }
  })
