/**
 * `codex archive store REPO PATH...`: archive files and directories (recursively), a transaction per group of files; with
 * `--write-stub` each original is replaced by its tombstone stub; `--manifest-out` writes a restore manifest.
 * Symbolic links are never followed or archived, nor are sockets, FIFOs and devices: they are listed as skipped.
 */
import { Archiver, ArchiveStore, Containment, Manifest, Printable, RestoreWriter } from "@codex-archive/core"
import { Args, Command, Options } from "@effect/cli"
import { Cause, Effect, Exit, Option } from "effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as ExitCode from "../ExitCode.js"
import * as Runtime from "../Runtime.js"

const resolveCommit = (commit: Option.Option<string>): Effect.Effect<string, Runtime.CliExit> => {
  const given = Option.getOrElse(commit, () => "HEAD").trim()
  if (given.toUpperCase() !== "HEAD") return Effect.succeed(given)
  return Effect.try({
    try: () =>
      execFileSync("git", ["rev-parse", "HEAD"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim(),
    catch: () =>
      new Runtime.CliExit({
        code: 2,
        message: "unable to resolve HEAD commit: not a git repository with commits here (pass --commit SHA)"
      })
  })
}

const parseMetadata = (entries: ReadonlyArray<string>): Effect.Effect<Record<string, string>, Runtime.CliExit> =>
  Effect.gen(function*() {
    const out: Record<string, string> = {}
    for (const entry of entries) {
      const at = entry.indexOf("=")
      if (at <= 0) {
        return yield* new Runtime.CliExit({
          code: 2,
          message: `--metadata '${entry}': metadata entry must be in key=value form`
        })
      }
      const key = entry.slice(0, at).trim()
      const value = entry.slice(at + 1).trim()
      // Checked here too, before the archive is opened or created: a bad entry leaves nothing behind.
      const problem = Archiver.metadataProblem(key, value)
      if (problem !== undefined) {
        return yield* new Runtime.CliExit({ code: 2, message: `--metadata '${entry}': ${problem}` })
      }
      out[key] = value
    }
    return out
  })

/** `--manifest-out` must sit in a folder holding every input, since manifests may not point outside their folder. */
const checkManifestPlace = (file: string, inputs: ReadonlyArray<string>): Effect.Effect<void, Runtime.CliExit> => {
  const outside = Containment.outsideFolderOf(file, inputs)
  // An existing file among the inputs would be written over before the walk reached it: neither archived nor kept.
  if (outside === undefined && fs.statSync(file, { throwIfNoEntry: false })?.isFile() === true) {
    const real = Containment.realPath(file)
    const among = inputs.map(Containment.realPath).find((input) => real === input || Containment.below(input, real))
    if (among !== undefined) {
      return Effect.fail(
        new Runtime.CliExit({
          code: 2,
          message: `--manifest-out ${file}: is one of the files being stored; name a file that does not exist yet`
        })
      )
    }
  }
  return outside === undefined
    ? Effect.void
    : Effect.fail(
      new Runtime.CliExit({
        code: 2,
        message: `--manifest-out ${file}: ${outside} is outside the manifest's folder ${
          path.dirname(path.resolve(file))
        }; put the manifest in a folder that contains every input`
      })
    )
}

/** Skipped files warned about one by one; the rest are counted in one warning (the summary lists every one). */
const warnedSkips = 100

export const command = Command.make(
  "store",
  {
    ...Runtime.shared,
    repo: Args.text({ name: "REPO" }).pipe(Args.withDescription("Repository identifier, e.g. acme/app")),
    paths: Args.text({ name: "PATH" }).pipe(Args.atLeast(1), Args.withDescription("Files or directories to archive")),
    reason: Options.choice("reason", ArchiveStore.reasons).pipe(
      Options.withDescription("Why the files are archived (default: dead)"),
      Options.withDefault("dead" as const)
    ),
    kind: Options.choice("kind", ArchiveStore.kinds).pipe(
      Options.withDescription("What the files are (default: code)"),
      Options.withDefault("code" as const)
    ),
    actor: Runtime.actorOption,
    commit: Options.text("commit").pipe(
      Options.withPseudoName("SHA"),
      Options.withDescription("Commit the files come from (default: git HEAD)"),
      Options.optional
    ),
    tags: Options.text("tag").pipe(
      Options.withPseudoName("TAG"),
      Options.withDescription("A tag recorded on every item"),
      Options.repeated
    ),
    metadata: Options.text("metadata").pipe(
      Options.withPseudoName("KEY=VALUE"),
      Options.withDescription(
        "Recorded on every item; legal_hold=true blocks purge (a boolean only); " +
          "keys the archive records itself (sha256, size_bytes, file_mode, ...) are reserved"
      ),
      Options.repeated
    ),
    mime: Options.text("mime").pipe(
      Options.withPseudoName("TYPE"),
      Options.withDescription("MIME type recorded on every item (default: guessed from each file's extension)"),
      Options.optional
    ),
    language: Options.text("language").pipe(
      Options.withPseudoName("LANGUAGE"),
      Options.withDescription("Language recorded on every item (default: guessed from each file's extension)"),
      Options.optional
    ),
    writeStub: Options.boolean("write-stub").pipe(
      Options.withDescription("Replace each original with its tombstone stub")
    ),
    manifestOut: Options.text("manifest-out").pipe(
      Options.withPseudoName("FILE"),
      Options.withDescription("Write a restore manifest (JSON) for batch-restore"),
      Options.optional
    )
  },
  (opts) =>
    Effect.gen(function*() {
      // Usage is checked before the archive is opened (or created): bad input leaves nothing behind.
      if (Option.isSome(opts.manifestOut)) yield* checkManifestPlace(opts.manifestOut.value, opts.paths)
      const commit = yield* resolveCommit(opts.commit)
      const metadata = yield* parseMetadata(opts.metadata)
      // Before the archive is opened or created: a symlink, a device, or one of the configuration's files is refused.
      const check = () =>
        Runtime.checkOutputFile("--manifest-out", Option.getOrUndefined(opts.manifestOut), Runtime.guarded())
      return yield* Runtime.withArchive(opts, { create: true, check }, (config) =>
        Effect.gen(function*() {
          const archiver = yield* Archiver.Archiver
          // The manifest and the items printed are written group by group as the store commits them, never held.
          const manifest = Option.isSome(opts.manifestOut) ? yield* Manifest.writer(opts.manifestOut.value) : undefined
          const itemsDir = fs.mkdtempSync(path.join(os.tmpdir(), "codex-store-"))
          const itemsFile = path.join(itemsDir, "items.json")
          yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(itemsDir, { recursive: true, force: true })))
          if (manifest !== undefined) {
            yield* Effect.addFinalizer((exit) => (exit._tag === "Failure" ? manifest.abort : Effect.void))
          }
          let first: Archiver.StoredFile | undefined
          let listed = 0
          // Files passed over (stubs, links, special files) are listed in the summary from a file of their own, and
          // warned about one by one only up to `warnedSkips`: a store run again over a stubbed tree may pass a million.
          const skippedFile = path.join(itemsDir, "skipped.json")
          const warned: Array<Archiver.SkippedFile> = []
          const unwarned = new Map<string, number>()
          let skippedCount = 0
          let skippedText = ""
          const flushSkipped = () => {
            fs.appendFileSync(skippedFile, skippedText)
            skippedText = ""
          }
          const report = yield* archiver.store(opts.paths, {
            repo: opts.repo,
            actor: Runtime.resolveActor(opts.actor),
            commit,
            reason: opts.reason,
            kind: opts.kind,
            tags: opts.tags,
            metadata,
            mime: Option.getOrUndefined(opts.mime),
            language: Option.getOrUndefined(opts.language),
            writeStub: opts.writeStub,
            cwd: process.cwd(),
            inlineLimit: config.store.inline_limit,
            exclude: manifest?.files,
            guarded: Runtime.guarded(),
            // The CLI owns its process: a large store hashes and compresses on worker threads, which set the bounds the
            // launcher set again: V8 dropped them for this thread too once a worker started (its young generation grew
            // to 32 MiB instead of 2).
            workers: "auto",
            workerV8Flags: RestoreWriter.heapFlags,
            onSkipped: (file) => {
              skippedText += Runtime.jsonElements([file], skippedCount++ === 0, 2)
              if (skippedText.length >= 1 << 16) flushSkipped()
              if (warned.length < warnedSkips) warned.push(file)
              else unwarned.set(file.reason, (unwarned.get(file.reason) ?? 0) + 1)
            },
            onStored: (group) =>
              Effect.gen(function*() {
                first ??= group[0]
                if (manifest !== undefined) {
                  yield* manifest.append(
                    group.map((s) => ({ tombstone: s.tombstone, output: s.source, sha256: s.sha256 }))
                  )
                }
                let text = ""
                for (const { source: _, ...rest } of group) {
                  text += `${listed++ === 0 ? "" : ","}\n    ${Printable.escapeJson(JSON.stringify(rest))}`
                }
                fs.appendFileSync(itemsFile, text)
              })
          }).pipe(
            // Stopped midway (a failure, Ctrl-C): the groups finished stay archived; say so before the error line. The
            // files after them are as they were (their group rolled back, or taken back when its evidence failed),
            // unless a stub failed: then that group is archived too, with stubs up to the file the error names.
            Effect.onExit((exit) => {
              if (Exit.isSuccess(exit)) return Effect.void
              const stub = Option.filter(Cause.failureOption(exit.cause), (e) => e._tag === "StubError")
              const unstubbed = Option.isSome(stub) ? stub.value.report.count - listed : 0
              if (listed === 0 && unstubbed === 0) return Effect.void
              const files = (n: number) => `${n} file${n === 1 ? "" : "s"}`
              return Runtime.note(
                `store: stopped after finishing ${files(listed)} (archived${
                  opts.writeStub ? ", stubs written" : ""
                }); ${
                  unstubbed > 0
                    ? `the next ${files(unstubbed)} ${unstubbed === 1 ? "is" : "are"} archived too, with stubs ` +
                      "written before the file named below; run the same command again to finish (it archives " +
                      "again those left without a stub, sharing their stored content)"
                    : "the files after them are as they were, not archived; run the same command again to finish"
                }${
                  // The files stubbed now are skipped as stubs then: the manifest it writes leaves them out.
                  manifest !== undefined && opts.writeStub
                    ? " (its --manifest-out lists only the files it archives; batch-restore --stubs restores all)"
                    : ""}`
              )
            }),
            // Exit 2 says nothing was attempted: a file unreadable in a later group fails the store once earlier groups
            // are archived (and stubbed), which is an operation failed midway (1), not bad input.
            Effect.mapError((e) =>
              listed > 0 && ExitCode.codeOf(e) === 2
                ? new Runtime.CliExit({ code: 1, message: ExitCode.messageOf(e) })
                : e
            )
          )
          if (manifest !== undefined) {
            yield* manifest.commit
          }
          flushSkipped()
          for (const s of warned) yield* Effect.logWarning(`skipped ${s.path}: ${s.reason}`)
          if (unwarned.size > 0) {
            const more = [...unwarned].map(([reason, n]) => `${n} ${reason}`).join(", ")
            yield* Effect.logWarning(
              `skipped ${skippedCount - warned.length} more files (${more}): the summary lists each`
            )
          }
          const single = opts.paths.length === 1 &&
            fs.statSync(opts.paths[0]!, { throwIfNoEntry: false })?.isFile() === true && report.count === 1
          // Printed once the files are archived, stubbed and recorded: a stdout that fails now says so.
          yield* Effect.gen(function*() {
            if (single && first !== undefined) {
              const s = first
              yield* Runtime.printJson({
                tombstone: s.tombstone,
                sha256: s.sha256,
                size_bytes: s.size_bytes,
                compressed_size: s.compressed_size,
                repo: report.repo,
                path: s.path,
                deduplicated: s.deduplicated,
                stub: s.stub
              })
            } else {
              // The summary's items (one per line) stream from the file they were gathered in: megabytes at a million files.
              const head = Runtime.jsonText(
                { repo: report.repo, stored: report.count, deduplicated: report.deduplicated, bytes: report.bytes }
              )
              yield* Runtime.printText(head.slice(0, -2) + `,\n  "items": [`)
              if (listed > 0) yield* Runtime.printFile(itemsFile)
              yield* Runtime.printText((listed > 0 ? "\n  ]" : "]") + `,\n  "skipped": [`)
              if (skippedCount > 0) yield* Runtime.printFile(skippedFile)
              yield* Runtime.printText(`${skippedCount > 0 ? "\n  " : ""}]\n}\n`)
            }
          }).pipe(Runtime.afterDone(() =>
            `archived ${report.count} file${report.count === 1 ? "" : "s"} (recorded in the evidence log${
              opts.writeStub ? ", stubs written" : ""
            })`
          ))
        }).pipe(Effect.scoped))
    })
).pipe(
  Command.withDescription(
    "Archive files and directories (a transaction per group of 1,000 files), optionally leaving stubs"
  )
)
