/**
 * `codex archive batch-restore MANIFEST` or `--stubs DIR`: many files back at once with bounded concurrency, a
 * progress bar (TTY) or `[BATCH] i/n STATUS id` lines on stderr, the summary JSON on stdout, a results file kept
 * current, `--resume`. Ctrl-C, SIGTERM or SIGHUP stops launching items, lets started ones finish, writes the results.
 */
import { Batch, BatchResults, type Config, ConfigSchema, Manifest, Printable, RestoreWriter } from "@codex-archive/core"
import { Args, Command, Options } from "@effect/cli"
import { SingleBar } from "cli-progress"
import { Deferred, Effect, Fiber, Option } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as ExitCode from "../ExitCode.js"
import * as MetricsOut from "../MetricsOut.js"
import * as Runtime from "../Runtime.js"

const mib = (bytes: number) => (bytes / 1048576).toFixed(1)

/** A live bar on a terminal; elsewhere a line every `interval` items, at the end, and for every failure. */
const progressReporter = (interval: number) => {
  if (process.stderr.isTTY) {
    const started = performance.now()
    const bar = new SingleBar({
      stream: process.stderr,
      format:
        "{bar} {value}/{total} files | {mib} MiB | {rate} files/s, {mibs} MiB/s | ETA {eta_formatted} | failed {failed}",
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 200
    })
    let startedBar = false
    return {
      onProgress: (p: Batch.Progress) =>
        Effect.sync(() => {
          const seconds = Math.max(0.001, (performance.now() - started) / 1000)
          const payload = {
            mib: mib(p.totalBytes),
            rate: (p.index / seconds).toFixed(0),
            mibs: (p.totalBytes / 1048576 / seconds).toFixed(1),
            failed: p.failed
          }
          if (!startedBar) {
            bar.start(p.total, 0, payload)
            startedBar = true
          }
          bar.update(p.index, payload)
        }),
      done: Effect.sync(() => startedBar && bar.stop())
    }
  }
  return {
    onProgress: (p: Batch.Progress) =>
      p.index % interval === 0 || p.index === p.total || p.status === "FAILED"
        ? Runtime.note(Printable.escape(`[BATCH] ${p.index}/${p.total} ${p.status} ${p.tombstone}`))
        : Effect.void,
    done: Effect.void
  }
}

export const command = Command.make(
  "batch-restore",
  {
    ...Runtime.shared,
    manifest: Args.text({ name: "MANIFEST" }).pipe(
      Args.withDescription(
        "Restore manifest: .json (array or {items}), .jsonl or .csv (tombstone,output[,actor,sha256])"
      ),
      Args.optional
    ),
    stubs: Options.directory("stubs").pipe(
      Options.withPseudoName("DIR"),
      Options.withDescription("Restore every tombstone stub under this folder, in place"),
      Options.optional
    ),
    actor: Runtime.actorOption,
    concurrency: Options.integer("concurrency").pipe(
      Options.withPseudoName("N"),
      Options.withDescription("Database round trips in flight (default: batch.concurrent)"),
      Options.optional
    ),
    results: Options.text("results").pipe(
      Options.withPseudoName("FILE"),
      Options.withDescription(
        "Write results here as the batch runs: JSON, or CSV if the name ends in .csv (default: batch.results_path)"
      ),
      Options.optional
    ),
    resume: Options.text("resume").pipe(
      Options.withPseudoName("FILE"),
      Options.withDescription("Results file of an earlier run: skip what it restored whose content is still in place"),
      Options.optional
    ),
    failFast: Options.boolean("fail-fast").pipe(Options.withDescription("Stop at the first failed item")),
    dryRun: Options.boolean("dry-run").pipe(
      Options.withDescription("Check the manifest and that every tombstone is restorable; write nothing")
    ),
    force: Options.boolean("force").pipe(Options.withDescription("Replace existing files whose content differs")),
    metricsOut: MetricsOut.option
  },
  (opts) =>
    Effect.gen(function*() {
      const source = Option.getOrUndefined(opts.manifest)
      const stubs = Option.getOrUndefined(opts.stubs)
      if ((source === undefined) === (stubs === undefined)) {
        return yield* new Runtime.CliExit({ code: 2, message: "batch-restore: give either a MANIFEST or --stubs DIR" })
      }
      const most = ConfigSchema.maxConcurrency
      if (Option.isSome(opts.concurrency) && (opts.concurrency.value < 1 || opts.concurrency.value > most)) {
        return yield* new Runtime.CliExit({
          code: 2,
          message: `--concurrency ${opts.concurrency.value}: expected a whole number from 1 to ${most}`
        })
      }
      const actor = Runtime.resolveActor(opts.actor)
      // The manifest is checked whole (streamed) before any backend is opened: a bad one restores nothing.
      const entries = yield* (stubs !== undefined
        ? Manifest.openStubs(stubs, { defaultActor: actor })
        : Manifest.open(source!, { defaultActor: actor }))
      const flags: ReadonlyArray<readonly [string, string, unknown]> = [
        ["batch.concurrent", "--concurrency", Option.getOrUndefined(opts.concurrency)],
        ["batch.results_path", "--results", Option.getOrUndefined(opts.results)]
      ]
      // Neither output may replace the archive, the evidence log, the manifest, or the other output.
      const check = (config: Config.ArchiveConfig) =>
        Effect.gen(function*() {
          if (source !== undefined) yield* Runtime.guard([{ file: source, what: "the manifest being restored" }])
          const results = config.batch.results_path ?? undefined
          yield* Runtime.checkOutputFile("--results", results, Runtime.guarded())
          if (results !== undefined) yield* Runtime.guard([{ file: results, what: "the --results file" }])
          yield* MetricsOut.check(opts.metricsOut)
        })
      return yield* Runtime.withArchive(opts, { create: false, flags, check }, (config) =>
        Effect.gen(function*() {
          if (opts.dryRun) {
            // Streamed: a group of entries checked at a time, their items kept in a file until the totals are known.
            const results = yield* Runtime.listFile("results", 2)
            const report = yield* Batch.checkSource(entries, {
              force: opts.force,
              source: stubs ?? source,
              // What the real run would refuse: the configuration's files, the manifest, the results, the resumed run.
              guarded: [
                ...Runtime.guarded(),
                ...MetricsOut.guardOf(opts.metricsOut),
                ...(Option.isSome(opts.resume)
                  ? [{ file: opts.resume.value, what: "the results file resumed from" }]
                  : [])
              ],
              onItems: results.append
            }).pipe(
              Effect.catchTag("ManifestError", (e) => new Runtime.CliExit({ code: 2, message: e.message }))
            )
            yield* results.print(report)
            if (report.failed > 0) {
              return yield* new Runtime.CliExit({
                code: 1,
                message: `batch-restore --dry-run: ${report.failed} of ${report.total} items cannot be restored`
              })
            }
            return
          }
          const progress = progressReporter(config.batch.progress_interval)
          const stop = yield* Deferred.make<void>()
          const resultsFile = config.batch.results_path ?? undefined
          // What stdout gets: the JSON results file itself, or a temporary one (no file, or a CSV one), streamed out.
          const printed = resultsFile !== undefined && !BatchResults.isCsv(resultsFile)
            ? resultsFile
            : path.join(fs.mkdtempSync(path.join(os.tmpdir(), "codex-batch-")), "summary.json")
          yield* Effect.addFinalizer(() =>
            Effect.sync(() =>
              printed !== resultsFile && fs.rmSync(path.dirname(printed), { recursive: true, force: true })
            )
          )
          const batch = yield* Effect.forkDaemon(
            Batch.run(entries, {
              actor,
              force: opts.force,
              failFast: opts.failFast,
              resultsFile,
              summaryFile: printed === resultsFile ? undefined : printed,
              resumeFrom: Option.getOrUndefined(opts.resume),
              source: stubs ?? source,
              // The configuration's own files (the key file, the configuration file) with the archive's and the run's.
              // The --metrics-out file too: written last, it would replace the file an entry restored there.
              guarded: [...Runtime.guarded(), ...MetricsOut.guardOf(opts.metricsOut)],
              stop: Deferred.await(stop),
              onProgress: progress.onProgress,
              // The CLI owns its process (a library caller gets none of this unless it asks): worker threads for a large
              // batch, which expose V8's collector (the launcher set --expose-gc) and set the bounds again, since flags
              // set at run time no longer held once workers had started.
              workers: "auto",
              tuneV8: true,
              // The launcher bounded this process's heap; the workers' need their own (apps/bench/README.md, "Growth").
              workerV8Flags: RestoreWriter.heapFlags
            }).pipe(Effect.ensuring(progress.done))
          )
          const finish = (report: Batch.Report) =>
            Effect.gen(function*() {
              const s = report.summary
              // The summary comes last, once every item is written and recorded: a stdout that fails says what was done.
              yield* Runtime.printFile(printed).pipe(Runtime.afterDone(() =>
                `batch-restore: ${s.succeeded} restored, ${s.unchanged} unchanged, ${s.skipped} skipped, ` +
                `${s.failed} failed, ${s.not_run} not run of ${s.total} (recorded in the evidence log${
                  resultsFile !== undefined && report.resultsError === undefined
                    ? `; results saved to ${resultsFile}`
                    : ""
                })`
              ))
              if (resultsFile !== undefined && report.resultsError === undefined) {
                yield* Runtime.note(`Batch results saved to ${resultsFile}`)
              }
              if (report.resultsError !== undefined) {
                yield* Runtime.note(`codex: error: ${report.resultsError.message}`)
              }
            })
          // Ctrl-C, SIGTERM, SIGHUP interrupt this fiber: stop launching, let the batch drain, print and save results.
          const report = yield* Fiber.join(batch).pipe(
            Effect.onInterrupt(() =>
              Effect.gen(function*() {
                yield* Runtime.note(
                  // A second signal finds no handler (the runtime's is gone after the first): Node's own ends the
                  // process at once, results left as last flushed (in progress), which --resume still reads.
                  "batch-restore: interrupted; finishing the files being written and saving results (resume with " +
                    "--resume; a second Ctrl-C quits at once)"
                )
                yield* Deferred.succeed(stop, undefined)
                const exit = yield* Fiber.await(batch)
                if (exit._tag === "Success") {
                  // The run's one error line is "interrupted" (main.ts): a summary stdout cannot take is said above it.
                  yield* finish(exit.value).pipe(Effect.catchAll((e) => Runtime.note(ExitCode.messageOf(e))))
                }
              })
            ),
            // A results file that cannot be opened stops the batch before any item (2); a manifest that changed after
            // its check stops it midway, its results and summary line written, and the summary printed as usual (1).
            Effect.catchAll((e) =>
              e._tag === "ManifestError"
                ? Effect.zipRight(
                  // The manifest's failure is the one to report; a summary stdout cannot take is then lost with it.
                  Runtime.printFile(printed).pipe(Effect.ignore),
                  new Runtime.CliExit({ code: 1, message: e.message })
                )
                : new Runtime.CliExit({ code: 2, message: e.message })
            )
          )
          yield* finish(report)
          const s: BatchResults.Summary = report.summary
          // An evidence log that took no line is the cause of every failure: say that, in one line.
          if (report.evidenceError !== undefined) {
            return yield* new Runtime.CliExit({ code: 1, message: report.evidenceError.message })
          }
          if (Batch.exitCode(s) !== 0 || report.resultsError !== undefined) {
            return yield* new Runtime.CliExit({
              code: 1,
              message:
                `batch-restore: ${s.failed} failed, ${s.not_run} not run of ${s.total} (${s.succeeded} restored, ${s.unchanged} unchanged, ${s.skipped} skipped)`
            })
          }
        }).pipe(Effect.scoped)).pipe(MetricsOut.writeAfter(opts.metricsOut))
    })
).pipe(
  Command.withDescription(
    "Restore many archived files from a manifest or a tree of stubs, concurrently, verified, resumable"
  )
)
