/**
 * The measured work, for one backend in one run: store the corpus, restore single small and large files, restore
 * everything at several concurrency levels, and restore one file with the CLI from a cold process. Each is paired
 * with its floor (Node `fs`, `tar -xf`, a cold `node` copying one file) measured right before or after it, the order
 * alternating, so ratios compare neighbours on a machine whose speed drifts.
 */
import { Archiver, CodexArchive, Config, Metrics, Restorer } from "@codex-archive/core"
import { Data, Effect, Layer, Metric } from "effect"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import type * as Backends from "./Backends.js"
import type * as Corpus from "./Corpus.js"
import * as Floor from "./Floor.js"
import type { Sample, ScenarioName, Unavailable } from "./Results.js"
import * as Stats from "./Stats.js"

export class ScenarioFailed extends Data.TaggedError("ScenarioFailed")<
  { readonly scenario: string; readonly target: string; readonly detail: string }
> {
  override get message() {
    return `${this.target} ${this.scenario}: ${this.detail}`
  }
}

export interface Workload {
  readonly corpus: Corpus.Corpus
  /** The files this workload stores and restores: the whole corpus, or a slice of it for a warm-up. */
  readonly files: ReadonlyArray<Corpus.WrittenFile>
  readonly totalBytes: number
  /** Files for the single-restore latency scenarios. */
  readonly small: ReadonlyArray<Corpus.WrittenFile>
  readonly large: ReadonlyArray<Corpus.WrittenFile>
  readonly scenarios: ReadonlySet<ScenarioName>
  readonly concurrency: ReadonlyArray<number>
  /** The tarball of `files`, when `tar` is installed. */
  readonly tarball: string | undefined
  /** The CLI bundle (`apps/cli/dist/codex.mjs`); the cold CLI scenario is unavailable when it is missing. */
  readonly cli: string
  /** Cold CLI invocations per run. */
  readonly cliInvocations: number
  /** Scratch folder for outputs, removed after each measurement. */
  readonly work: string
}

interface Measured {
  readonly values: Record<string, number>
  readonly core?: Record<string, number>
}

const MiB = 1024 * 1024
const actor = "bench"

/** Picks files for the latency scenarios: up to `small` of 1–32 KiB text and the `large` biggest files of ≥ 1 MiB. */
export const latencySamples = (
  files: ReadonlyArray<Corpus.WrittenFile>,
  counts: { readonly small: number; readonly large: number }
) => {
  const small = files.filter((f) => f.sizeClass === "small" && f.kind === "text")
  const step = Math.max(1, Math.floor(small.length / counts.small))
  return {
    small: small.filter((_, i) => i % step === 0).slice(0, counts.small),
    large: files.filter((f) => f.size >= MiB).sort((a, b) => b.size - a.size || (a.path < b.path ? -1 : 1)).slice(
      0,
      counts.large
    )
  }
}

/** The core services over one backend's fresh archive, with an evidence log in `dir`. */
export const services = (target: Backends.Target, dir: string) =>
  Layer.unwrapEffect(Effect.map(
    Config.compose([
      Config.fromFlags([["backend.url", "--url", target.url], [
        "evidence.dir",
        "--evidence",
        path.join(dir, "evidence")
      ]], dir)
    ], dir),
    ({ config }) => CodexArchive.layer({ store: target.layer, ...CodexArchive.settingsOf(config), evidence: {} })
  )).pipe(
    Layer.mapError((e) =>
      new ScenarioFailed({ scenario: "setup", target: target.backend, detail: (e as Error).message ?? String(e) })
    )
  )

let scratchCounter = 0
/** A new, absent output folder; removed again (untimed) by `cleanup`. */
const scratch = (work: string, label: string) => path.join(work, `out-${label}-${++scratchCounter}`)
const cleanup = (dir: string) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))

const seconds = (ms: number) => ms / 1000

const throughput = (ms: number, bytes: number, files: number) => ({
  seconds: seconds(ms),
  mib_s: bytes / MiB / seconds(ms),
  files_s: files / seconds(ms)
})

const latencyValues = (samples: ReadonlyArray<number>) => {
  const l = Stats.latency(samples)
  return { p50_ms: l.p50, p95_ms: l.p95, p99_ms: l.p99, max_ms: l.max }
}

/** Reads the core's metrics for work tagged with `bench_sample`: histogram means and counters. */
const histogramMean = (histogram: Metric.Metric.Histogram<number>) =>
  Effect.map(Metric.value(histogram), (s) => (s.count === 0 ? Number.NaN : s.sum / s.count))

const coreRestoreFigures = Effect.all({
  count: Effect.map(Metric.value(Metrics.restoreDuration), (s) => s.count),
  mean_ms: histogramMean(Metrics.restoreDuration),
  max_ms: Effect.map(Metric.value(Metrics.restoreDuration), (s) => s.max),
  fetch_ms: histogramMean(Metrics.fetchDuration),
  decompress_ms: histogramMean(Metrics.decompressDuration),
  verify_ms: histogramMean(Metrics.verifyDuration),
  write_ms: histogramMean(Metrics.writeDuration),
  record_ms: histogramMean(Metrics.recordDuration),
  restored: Effect.map(Metric.value(Metrics.restores), (s) => s.count),
  restored_mib: Effect.map(Metric.value(Metrics.restoredBytes), (s) => s.count / MiB),
  failures: Effect.map(Metric.value(Metrics.restoreFailures), (s) => s.count),
  retries: Effect.map(Metric.value(Metrics.retries), (s) => s.count)
})

let sampleCounter = 0
/** Runs `effect` with every core metric tagged by a fresh sample id, so its figures are read in isolation. */
const isolated = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.tagMetrics(effect, "bench_sample", String(++sampleCounter))

export interface RunContext {
  readonly target: Backends.Target
  readonly run: number
  /** False for warm-up runs: everything is measured, nothing is kept. */
  readonly record: boolean
  /** Alternates which of a pair goes first. */
  readonly floorFirst: () => boolean
  readonly samples: Array<Sample>
  readonly unavailable: Array<Unavailable>
}

const sync = <A>(scenario: string, target: string, f: () => A) =>
  Effect.try({
    try: f,
    catch: (e) => new ScenarioFailed({ scenario, target, detail: (e as Error).message ?? String(e) })
  })

/**
 * Measures the backend and its floors next to each other, in alternating order, and keeps the samples. A block of
 * scenarios (the batch levels) shares one floor measurement, taken right before or after the whole block.
 */
const paired = <A, E, R>(
  ctx: RunContext,
  scenarios: ReadonlyArray<string>,
  subject: Effect.Effect<readonly [ReadonlyArray<Measured>, A], E, R>,
  floors: ReadonlyArray<readonly [target: string, measure: () => Measured]>
): Effect.Effect<A, E | ScenarioFailed, R> =>
  Effect.gen(function*() {
    const floorMeasured: Array<readonly [string, Measured]> = []
    // A warm-up only warms the code under test; the floors need none and would only cost time.
    const measureFloors = Effect.forEach(ctx.record ? floors : [], ([target, measure]) =>
      Effect.map(sync(scenarios.join(","), target, measure), (m) =>
        void floorMeasured.push([target, m])), { discard: true })
    const first = ctx.floorFirst()
    const t0 = performance.now()
    if (first) {
      yield* measureFloors
    }
    const t1 = performance.now()
    const [measured, result] = yield* subject
    const t2 = performance.now()
    if (!first) {
      yield* measureFloors
    }
    const floorMs = first ? t1 - t0 : performance.now() - t2
    yield* Effect.logDebug(
      `${ctx.target.backend} ${scenarios.join(",")}: ${((t2 - t1) / 1000).toFixed(2)} s, floors ${
        (floorMs / 1000).toFixed(2)
      } s`
    )
    if (ctx.record) {
      for (const [i, scenario] of scenarios.entries()) {
        ctx.samples.push({ scenario, target: ctx.target.backend, run: ctx.run, ...measured[i]! })
        for (const [target, m] of floorMeasured) {
          ctx.samples.push({ scenario, target, run: ctx.run, pairedWith: ctx.target.backend, ...m })
        }
      }
    }
    return result
  })

const markUnavailable = (ctx: RunContext, scenario: string, reason: string) =>
  Effect.sync(() => {
    if (!ctx.unavailable.some((u) => u.scenario === scenario && u.target === ctx.target.backend)) {
      ctx.unavailable.push({ scenario, target: ctx.target.backend, reason, run: ctx.record ? ctx.run : -1 })
    }
  })

/** Every selected scenario for one backend in one run; needs the core services over a fresh archive. */
export const runAll = (w: Workload, ctx: RunContext) =>
  Effect.gen(function*() {
    const archiver = yield* Archiver.Archiver
    const restorer = yield* Restorer.Restorer
    const backend = ctx.target.backend
    const files = w.files

    // Store: always run (the restores need its tombstones); measured only when selected.
    const store = isolated(Effect.gen(function*() {
      const t = performance.now()
      const inputs = files.length === w.corpus.files.length ? [w.corpus.dir] : files.map((f) => f.absolute)
      // As the CLI runs them: worker threads sized to the job, V8 tuned (a library caller gets neither unless it asks).
      const report = yield* archiver.store(inputs, {
        repo: "bench/corpus",
        actor,
        commit: "bench",
        reason: "dead",
        kind: "code",
        cwd: w.corpus.dir,
        workers: "auto"
      })
      const ms = performance.now() - t
      const fresh = report.stored.filter((s) => !s.deduplicated)
      const measured: Measured = {
        values: throughput(ms, w.totalBytes, files.length),
        core: {
          stored: (yield* Metric.value(Metrics.stored)).count,
          stored_mib: (yield* Metric.value(Metrics.storedBytes)).count / MiB,
          compression_ratio: fresh.reduce((n, s) => n + s.size_bytes, 0) /
            Math.max(1, fresh.reduce((n, s) => n + s.compressed_size, 0)),
          deduplicated: report.stored.length - fresh.length
        }
      }
      return [[measured], new Map(report.stored.map((s) => [s.source, s.tombstone]))] as const
    }))
    /** Times writing the whole corpus into a new folder (removed afterwards, untimed). */
    const wholeCorpusFloor = (label: string, write: (out: string) => void) => (): Measured => {
      const out = scratch(w.work, label)
      const t = performance.now()
      write(out)
      const ms = performance.now() - t
      fs.rmSync(out, { recursive: true, force: true })
      return { values: throughput(ms, w.totalBytes, files.length) }
    }
    const fsCopyFloor = wholeCorpusFloor("floor-fs", (out) => Floor.copyAll(files, out))
    const tombstones = w.scenarios.has("store")
      ? yield* paired(ctx, ["store"], store, [["fs", fsCopyFloor]])
      : (yield* store)[1]
    const tombstoneOf = (file: Corpus.WrittenFile) => tombstones.get(file.absolute)!

    if (w.scenarios.has("restore")) {
      for (const [scenario, sample] of [["restore-small", w.small], ["restore-large", w.large]] as const) {
        if (sample.length === 0) {
          // A warm-up's slice may lack large files; only a measured run's absence is worth reporting.
          if (ctx.record) yield* markUnavailable(ctx, scenario, "the corpus has no files of this size class")
          continue
        }
        const out = scratch(w.work, `${backend}-${scenario}`)
        const subject = isolated(Effect.gen(function*() {
          const times: Array<number> = []
          for (const file of sample) {
            const t = performance.now()
            yield* restorer.restore({
              tombstone: tombstoneOf(file),
              output: path.join(out, ...file.path.split("/")),
              actor
            })
            times.push(performance.now() - t)
          }
          return [[{ values: latencyValues(times), core: yield* coreRestoreFigures }], undefined] as const
        }))
        const floor = () => {
          const floorOut = scratch(w.work, `floor-${scenario}`)
          const times: Array<number> = []
          for (const file of sample) {
            const t = performance.now()
            Floor.copyOne(file, floorOut)
            times.push(performance.now() - t)
          }
          fs.rmSync(floorOut, { recursive: true, force: true })
          return { values: latencyValues(times) }
        }
        yield* paired(ctx, [scenario], subject, [["fs", floor]])
        yield* cleanup(out)
      }
    }

    if (w.scenarios.has("batch")) {
      // One block of levels with one floor measurement beside it: writing the corpus is the dominant cost here.
      const levels = w.concurrency.map((concurrency) => ({ concurrency, scenario: `batch-c${concurrency}` }))
      const subject = Effect.forEach(levels, ({ concurrency, scenario }) => {
        const out = scratch(w.work, `${backend}-${scenario}`)
        const requests = files.map((f) => ({
          tombstone: tombstoneOf(f),
          output: path.join(out, ...f.path.split("/")),
          actor
        }))
        return isolated(Effect.gen(function*() {
          const t = performance.now()
          const results = yield* restorer.restoreAll(requests, { concurrency, workers: "auto", tuneV8: true })
          const ms = performance.now() - t
          const failed = results.find((r) => r._tag === "Failure")
          if (failed?._tag === "Failure") {
            return yield* new ScenarioFailed({
              scenario,
              target: backend,
              detail: `${failed.request.output}: ${failed.error.message}`
            })
          }
          return { values: throughput(ms, w.totalBytes, files.length), core: yield* coreRestoreFigures }
        })).pipe(Effect.ensuring(cleanup(out)))
      })
      const floors: Array<readonly [string, () => Measured]> = [["fs", fsCopyFloor]]
      const tarball = w.tarball
      if (tarball !== undefined) {
        floors.push([
          "tar",
          wholeCorpusFloor("floor-tar", (out) => Floor.extractTarball(tarball, out))
        ])
      }
      yield* paired(
        ctx,
        levels.map((l) => l.scenario),
        Effect.map(subject, (measured) => [measured, undefined] as const),
        floors
      )
    }

    if (w.scenarios.has("cli")) {
      const file = w.small[0] ?? files[0]
      if (!fs.existsSync(w.cli)) {
        yield* markUnavailable(ctx, "cli-cold", `no CLI bundle at ${w.cli} (build apps/cli first)`)
      } else if (file !== undefined) {
        const env = {
          ...process.env,
          CODEX_ARCHIVE_URL: ctx.target.url,
          CODEX_EVIDENCE_DIR: path.join(w.work, "cli-evidence"),
          CODEX_ACTOR: actor
        }
        const subject = Effect.gen(function*() {
          const times: Array<number> = []
          for (let i = 0; i < w.cliInvocations; i++) {
            const out = path.join(scratch(w.work, `${backend}-cli`), path.basename(file.path))
            fs.mkdirSync(path.dirname(out), { recursive: true })
            const t = performance.now()
            const result = spawnSync(process.execPath, [w.cli, "archive", "restore", tombstoneOf(file), out], {
              env,
              cwd: w.work,
              encoding: "utf8"
            })
            times.push(performance.now() - t)
            yield* cleanup(path.dirname(out))
            if (result.status !== 0) {
              return yield* new ScenarioFailed({
                scenario: "cli-cold",
                target: backend,
                detail: `exit ${result.status ?? result.signal}: ${
                  (result.stderr || result.error?.message || "").trim().slice(0, 400)
                }`
              })
            }
          }
          return [[{ values: latencyValues(times) }], undefined] as const
        })
        const floor = () => {
          const times: Array<number> = []
          for (let i = 0; i < w.cliInvocations; i++) {
            const out = scratch(w.work, "floor-cli")
            fs.mkdirSync(out, { recursive: true })
            const t = performance.now()
            Floor.nodeCopy(file.absolute, path.join(out, path.basename(file.path)))
            times.push(performance.now() - t)
            fs.rmSync(out, { recursive: true, force: true })
          }
          return { values: latencyValues(times) }
        }
        yield* paired(ctx, ["cli-cold"], subject, [["fs", floor]]).pipe(
          // The CLI is built elsewhere: its failure is reported with the results, not fatal to the bench.
          Effect.catchTag("ScenarioFailed", (e) => markUnavailable(ctx, "cli-cold", `failed: ${e.detail}`))
        )
      }
    }
  })
