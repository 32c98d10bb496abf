/** `codex archive restore TOMBSTONE [OUTPUT]` or `codex archive restore STUB`: one file back, verified, atomically. */
import type { ArchiveStore, Config } from "@codex-archive/core"
import { FileOps, Printable, Restorer, RestoreTarget } from "@codex-archive/core"
import { Args, Command, Options } from "@effect/cli"
import { Effect, Option, Redacted } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as MetricsOut from "../MetricsOut.js"
import * as Runtime from "../Runtime.js"

const target = Args.text({ name: "TOMBSTONE|STUB" }).pipe(
  Args.withDescription("A tombstone id, or a stub file to restore in place")
)
const output = Args.text({ name: "OUTPUT" }).pipe(
  Args.withDescription("Where to write the file (default: the stub's place, or the recorded path under --root)"),
  Args.optional
)

/** `--out -`, the original's "what would be restored": the recorded path, size and SHA-256, content checked first. */
const describe = (opts: Runtime.Shared, tombstone: string, expected: Restorer.Request["expected"]) =>
  Runtime.withArchive(opts, { create: false, readOnly: true }, () =>
    Effect.flatMap(
      Restorer.describe(tombstone, expected),
      (d) => Runtime.printJson({ path: d.path, bytes_len: d.bytes, sha256: d.sha256 })
    ))

export const command = Command.make(
  "restore",
  {
    ...Runtime.shared,
    target,
    output,
    actor: Runtime.actorOption,
    force: Options.boolean("force").pipe(Options.withDescription("Replace an existing file whose content differs")),
    json: Options.boolean("json").pipe(Options.withDescription("Print the outcome with its timings as JSON")),
    debug: Options.boolean("debug").pipe(
      Options.withDescription("Print the backend and the archive URL, unredacted, on stderr")
    ),
    out: Options.text("out").pipe(
      Options.withPseudoName("PATH"),
      Options.withDescription(
        "Where to write the file: the original's spelling of OUTPUT (its stubs print `restore ID --out PATH`); " +
          "'-' writes nothing and prints {path, bytes_len, sha256} once the stored content checks out"
      ),
      Options.optional
    ),
    metricsOut: MetricsOut.option,
    root: Options.text("root").pipe(
      Options.withPseudoName("DIR"),
      Options.withDescription("Folder a recorded path is restored under when no OUTPUT is given (default: here)"),
      Options.optional
    ),
    allowOutside: Options.boolean("allow-outside").pipe(Options.withDescription(
      "Restore to a recorded path that is absolute or leads outside --root (logged as a warning)"
    ))
  },
  (opts) =>
    Effect.gen(function*() {
      if (Option.isSome(opts.output) && Option.isSome(opts.out)) {
        const message = `restore: OUTPUT ${opts.output.value} and --out ${opts.out.value} both given; give one`
        return yield* new Runtime.CliExit({ code: 2, message })
      }
      const given = Option.orElse(opts.output, () => opts.out)
      // A mistyped flag is taken as OUTPUT by @effect/cli: `restore ID --frce` restored to a file named `--frce`.
      if (Option.isSome(opts.output) && /^-./.test(opts.output.value)) {
        const message =
          `restore: OUTPUT '${opts.output.value}' looks like an option restore does not have; to name a ` +
          `file so, write ./${opts.output.value}`
        return yield* new Runtime.CliExit({ code: 2, message })
      }
      // `out2/` was written as a file `out2`: an output must name a file.
      if (Option.isSome(given) && given.value !== "-" && FileOps.namesNoFile(given.value)) {
        const message = `restore: OUTPUT ${given.value} ${FileOps.namesNoFileProblem}; give a file name`
        return yield* new Runtime.CliExit({ code: 2, message })
      }
      // The target is checked before the archive is opened: a bad id or stub never touches the database.
      const resolved = yield* RestoreTarget.fromArgument(opts.target, Option.getOrUndefined(given))
      if (resolved.output === "-" && Option.isSome(opts.out)) {
        return yield* describe(opts, resolved.tombstone, resolved.expected)
      }
      const root = path.resolve(Option.getOrElse(opts.root, () => "."))
      if (Option.isSome(opts.root) && !fs.statSync(root, { throwIfNoEntry: false })?.isDirectory()) {
        return yield* new Runtime.CliExit({ code: 2, message: `--root ${opts.root.value}: no such folder` })
      }
      const actor = Runtime.resolveActor(opts.actor)
      const onOpenFailure = (
        config: Config.ArchiveConfig,
        error: ArchiveStore.NotAnArchive | ArchiveStore.StoreError
      ) => Restorer.recordOpenFailure(config, { actor, tombstone: resolved.tombstone, output: resolved.output }, error)
      const check = () => MetricsOut.check(opts.metricsOut)
      return yield* Runtime.withArchive(opts, { create: false, onOpenFailure, check }, (config) =>
        Effect.gen(function*() {
          const restorer = yield* Restorer.Restorer
          // The original's --debug: its pre-flight lines with the full URL, which it is the user's to ask for.
          if (opts.debug) {
            yield* Runtime.note(`[DEBUG] Archive backend: ${config.backend.backend}`)
            yield* Runtime.note(`[DEBUG] Archive URL: ${Redacted.value(config.backend.url)}`)
          }
          const out = yield* RestoreTarget.outputOf({
            tombstone: resolved.tombstone,
            given: resolved.output,
            root,
            allowOutside: opts.allowOutside
          }).pipe(Effect.catchTag("OutsideRoot", (e) =>
            new Runtime.CliExit({ code: 2, message: e.message })))
          // Nor may it be this restore's output (by name, through a link, a hard link): it was restored, then replaced.
          yield* MetricsOut.check(opts.metricsOut, [{ file: out, what: "the output of this restore" }])
          yield* Effect.logDebug("restore starting").pipe(
            Effect.annotateLogs({ backend: config.backend.backend, output: out })
          )
          // A recorded path stays under the root while it is written, not only when it was checked; any other output
          // stays on the way it has now.
          const contained = resolved.contained ??
            (opts.allowOutside ? RestoreTarget.containedAt(out) : RestoreTarget.containedIn(root, out))
          if (typeof contained === "string") {
            return yield* new Runtime.CliExit({ code: 2, message: `restore: output ${out}: ${contained}` })
          }
          const outcome = yield* restorer.restore({
            tombstone: resolved.tombstone,
            output: out,
            actor,
            force: opts.force,
            contained,
            guarded: Runtime.guarded(),
            expected: resolved.expected
          })
          yield* (opts.json ? Runtime.printJson(outcome) : Runtime.printLine(Printable.escape(outcome.output))).pipe(
            Runtime.afterDone(() =>
              `${outcome.status === "restored" ? "restored" : "already had the archived content:"} ` +
              `${Printable.escape(outcome.output)} (recorded in the evidence log)`
            )
          )
          if (outcome.status === "unchanged") {
            yield* Runtime.note(
              `${Printable.escape(outcome.output)}: already has the archived content; nothing written`
            )
          }
        }))
    }).pipe(MetricsOut.writeAfter(opts.metricsOut))
).pipe(Command.withDescription("Restore one archived file (verified before it becomes visible)"))
