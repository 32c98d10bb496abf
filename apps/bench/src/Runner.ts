/**
 * One bench run end to end: generate the corpus, then for every run (warm-ups first, discarded) and every backend,
 * a fresh archive and every selected scenario paired with its floor; finally the figures and the report document.
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Backends from "./Backends.js"
import * as Corpus from "./Corpus.js"
import * as Floor from "./Floor.js"
import * as Machine from "./Machine.js"
import type { Report } from "./Report.js"
import { figures, type Sample, type ScenarioName, type Unavailable } from "./Results.js"
import * as Scenarios from "./Scenarios.js"

export interface Settings {
  readonly corpus: string
  readonly seed: number
  readonly backends: ReadonlyArray<Backends.BackendName>
  readonly scenarios: ReadonlyArray<ScenarioName>
  readonly runs: number
  readonly warmup: number
  readonly concurrency: ReadonlyArray<number>
  readonly servers: Backends.ServerUrls
  readonly cli: string
  /** Scratch space for archives and outputs (a new folder under it, removed at the end). */
  readonly tmp: string
  /** Where generated corpora are kept for later runs; without it the corpus is generated into the scratch space. */
  readonly corpusCache: string | undefined
  /** Files per run in the single-restore latency scenarios. */
  readonly latencyFiles: { readonly small: number; readonly large: number }
  readonly cliInvocations: number
  /** The command line, for the report. */
  readonly command: string
}

const MiB = 1024 * 1024

export const run = (settings: Settings) =>
  Effect.gen(function*() {
    const count = yield* Corpus.parseCount(settings.corpus)
    const work = yield* Effect.acquireRelease(
      Effect.sync(() => fs.mkdtempSync(path.join(settings.tmp, "codex-bench-"))),
      (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
    )
    const started = performance.now()
    const corpusPlan = Corpus.plan(count, settings.seed)
    const corpus = settings.corpusCache === undefined
      ? Corpus.write(corpusPlan, path.join(work, "corpus"))
      : Corpus.cached(corpusPlan, settings.corpusCache)
    yield* Effect.logInfo(
      `corpus: ${corpus.files.length} files, ${
        (corpus.totalBytes / MiB).toFixed(1)
      } MiB, seed ${corpus.seed}, digest ${corpus.digest} (${((performance.now() - started) / 1000).toFixed(1)} s)`
    )
    const tarball = settings.scenarios.includes("batch") && Floor.tarAvailable()
      ? path.join(work, "corpus.tar")
      : undefined
    if (tarball !== undefined) Floor.createTarball(corpus.dir, tarball)
    const workload: Scenarios.Workload = {
      corpus,
      files: corpus.files,
      totalBytes: corpus.totalBytes,
      ...Scenarios.latencySamples(corpus.files, settings.latencyFiles),
      scenarios: new Set(settings.scenarios),
      concurrency: settings.concurrency,
      tarball,
      cli: settings.cli,
      cliInvocations: settings.cliInvocations,
      work
    }
    // Warm-ups run every code path on a tenth of the corpus: enough for the JIT, connections and caches, and cheap.
    const warmFiles = corpus.files.filter((_, i) => i % 10 === 0)
    const warmWorkload: Scenarios.Workload = {
      ...workload,
      files: warmFiles,
      totalBytes: warmFiles.reduce((n, f) => n + f.size, 0),
      ...Scenarios.latencySamples(warmFiles, { small: 10, large: 1 }),
      tarball: undefined,
      cliInvocations: 1
    }
    const samples: Array<Sample> = []
    const unavailable: Array<Unavailable> = []
    const failures: Array<string> = []
    const skip = new Set<Backends.BackendName>()
    let flip = 0
    const total = settings.warmup + settings.runs
    for (let r = 0; r < total; r++) {
      const warm = r < settings.warmup
      for (const backend of settings.backends) {
        if (skip.has(backend)) continue
        const label = warm ? `warm-up ${r + 1}/${settings.warmup}` : `run ${r - settings.warmup + 1}/${settings.runs}`
        const before = samples.length
        const t = performance.now()
        const outcome = yield* Effect.scoped(Effect.gen(function*() {
          const target = yield* Backends.fresh(
            backend,
            settings.servers,
            work,
            `${process.pid}_${r}_${backend}`,
            Math.max(...settings.concurrency, 4)
          )
          const ctx: Scenarios.RunContext = {
            target,
            run: r - settings.warmup,
            record: !warm,
            floorFirst: () => flip++ % 2 === 0,
            samples,
            unavailable
          }
          yield* Scenarios.runAll(warm ? warmWorkload : workload, ctx).pipe(
            Effect.provide(Scenarios.services(target, path.join(work, `evidence-${backend}`)))
          )
        })).pipe(Effect.either)
        if (outcome._tag === "Left") {
          const e = outcome.left
          skip.add(backend)
          if (e._tag === "BackendUnavailable") {
            unavailable.push({ scenario: "*", target: backend, reason: e.reason, run: r - settings.warmup })
          } else failures.push(e.message)
          yield* Effect.logError(`${backend} ${label}: ${e.message}`)
          continue
        }
        yield* Effect.logInfo(
          `${backend} ${label}: ${((performance.now() - t) / 1000).toFixed(1)} s${
            warm ? "" : `, ${samples.length - before} samples`
          }`
        )
      }
    }
    const report: Report = {
      tool: "codex-archive bench",
      created_at: new Date().toISOString(),
      command: settings.command,
      seed: settings.seed,
      corpus: { spec: settings.corpus, files: corpus.files.length, bytes: corpus.totalBytes, digest: corpus.digest },
      settings: {
        backends: settings.backends,
        scenarios: settings.scenarios,
        runs: settings.runs,
        warmup: settings.warmup,
        concurrency: settings.concurrency,
        latency_files: { small: workload.small.length, large: workload.large.length },
        cli_invocations: settings.cliInvocations,
        tar: tarball !== undefined
      },
      versions: Machine.versions(),
      machine: Machine.describe(),
      figures: figures(samples),
      unavailable,
      failures,
      samples,
      duration_s: (performance.now() - started) / 1000
    }
    return report
  }).pipe(Effect.scoped)

export const defaultTmp = () => os.tmpdir()
export const defaultCorpusCache = () => path.join(os.tmpdir(), "codex-bench-corpus")
