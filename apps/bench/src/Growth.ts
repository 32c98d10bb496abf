/**
 * The growth scenario: does a file cost the same at 10,000 files as at 100,000 or 1,000,000? Small source-like files
 * (1–16 KiB, 100 to a folder) are stored (`--manifest-out`) and batch-restored from that manifest by the CLI, each a
 * process of its own (wall time, peak RSS), on every backend, beside `tar -cf - DIR | zstd -3` and `tar -xf` of the
 * same tree. Each round runs every target once in a rotated order, so a machine's drift hits them alike. Every restore
 * is compared with the corpus (`diff -rq`) outside the timing.
 */
import { Data, Effect } from "effect"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Backends from "./Backends.js"
import * as Corpus from "./Corpus.js"
import * as Machine from "./Machine.js"
import { num } from "./Report/Format.js"
import * as Stats from "./Stats.js"

export interface Settings {
  readonly counts: ReadonlyArray<number>
  readonly backends: ReadonlyArray<Backends.BackendName>
  readonly rounds: number
  readonly seed: number
  readonly servers: Backends.ServerUrls
  readonly cli: string
  readonly tmp: string
  readonly corpusCache: string | undefined
  /** The command line, for the report. */
  readonly command: string
}

/** The floors: what an archiver that neither hashes nor records anything pays for the same tree. */
export type Floor = "tar -cf | zstd -3" | "tar -xf"
export type Target = Backends.BackendName | Floor
export type Operation = "store" | "restore"

export interface Measurement {
  readonly files: number
  readonly target: Target
  readonly operation: Operation
  readonly round: number
  readonly seconds: number
  readonly rss_mib: number
}

export interface Row {
  readonly files: number
  readonly target: Target
  readonly operation: Operation
  readonly seconds: number
  readonly us_per_file: number
  readonly rss_mib: number
  /** Median seconds over the floor's median seconds for the same operation and file count. */
  readonly vs_floor: number
  readonly runs: ReadonlyArray<number>
}

export interface Report {
  readonly command: string
  /** The versions of node, effect and the drivers, and the machine (as `bench.json` has them). */
  readonly versions: Readonly<Record<string, string>>
  readonly machine: ReturnType<typeof Machine.describe>
  /** Steps that failed (a server that cannot be reached): the report still holds every other figure. */
  readonly problems: ReadonlyArray<string>
  readonly rounds: number
  readonly corpora: ReadonlyArray<{ readonly files: number; readonly mib: number; readonly digest: string }>
  readonly measurements: ReadonlyArray<Measurement>
  readonly rows: ReadonlyArray<Row>
}

export class GrowthFailed extends Data.TaggedError("GrowthFailed")<{ readonly step: string; readonly detail: string }> {
  override get message() {
    return `growth: ${this.step}: ${this.detail}`
  }
}

const MiB = 1024 * 1024
const floorOf: Record<Operation, Floor> = { store: "tar -cf | zstd -3", restore: "tar -xf" }

/** Runs one command as a process of its own: wall seconds (measured here) and peak RSS (from GNU time). */
const measure = (
  step: string,
  work: string,
  command: ReadonlyArray<string>,
  options: { readonly cwd: string; readonly env?: NodeJS.ProcessEnv }
) =>
  Effect.suspend(() => {
    const timeFile = path.join(work, "time.txt")
    const started = performance.now()
    const run = spawnSync("/usr/bin/time", ["-f", "%M", "-o", timeFile, ...command], {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ["ignore", "ignore", "pipe"],
      maxBuffer: 64 * MiB
    })
    const seconds = (performance.now() - started) / 1000
    if (run.error !== undefined) return Effect.fail(new GrowthFailed({ step, detail: run.error.message }))
    if (run.status !== 0) {
      const tail = run.stderr.toString("utf8").trim().split("\n").slice(-3).join(" | ")
      return Effect.fail(new GrowthFailed({ step, detail: `exit ${run.status}: ${tail}` }))
    }
    const kb = Number(fs.readFileSync(timeFile, "utf8").trim().split("\n").at(-1))
    return Effect.succeed({ seconds, rss_mib: kb / 1024 })
  })

/** Fails unless `restored` holds exactly the corpus's bytes. */
const check = (step: string, corpusDir: string, restored: string) =>
  Effect.suspend(() => {
    const diff = spawnSync("diff", ["-rq", corpusDir, restored], {
      stdio: ["ignore", "pipe", "pipe"],
      maxBuffer: 64 * MiB
    })
    return diff.status === 0
      ? Effect.void
      : Effect.fail(
        new GrowthFailed({
          step,
          detail: `restored tree differs from the corpus: ${
            diff.stdout.toString("utf8").split("\n").slice(0, 3).join(" | ")
          }${diff.stderr.toString("utf8").trim()}`
        })
      )
  })

const remove = (...paths: ReadonlyArray<string>) =>
  Effect.sync(() => {
    for (const p of paths) fs.rmSync(p, { recursive: true, force: true })
  })

/** The floors for one corpus: a compressed tarball written, then the (uncompressed) tarball extracted. */
const floors = (corpus: Corpus.Corpus, tarball: string, work: string) =>
  Effect.gen(function*() {
    const packed = path.join(work, "floor.tar.zst")
    const store = yield* measure("tar -cf | zstd -3", work, [
      "sh",
      "-c",
      `tar -cf - -C "$0" . | zstd -3 -q -o "$1"`,
      corpus.dir,
      packed
    ], { cwd: work })
    yield* remove(packed)
    const out = path.join(work, "out-tar")
    fs.mkdirSync(out)
    const restore = yield* measure("tar -xf", work, ["tar", "-xf", tarball, "-C", out], { cwd: work })
    yield* check("tar -xf", corpus.dir, out)
    yield* remove(out)
    return [["tar -cf | zstd -3", "store", store], ["tar -xf", "restore", restore]] as const
  })

/** Store then batch-restore the corpus through the CLI on a fresh archive of `backend`. */
const codex = (settings: Settings, corpus: Corpus.Corpus, backend: Backends.BackendName, work: string, name: string) =>
  Effect.scoped(Effect.gen(function*() {
    const archive = yield* Backends.fresh(backend, settings.servers, work, name, 1).pipe(
      Effect.mapError((e) => new GrowthFailed({ step: `${backend} archive`, detail: e.reason }))
    )
    const out = path.join(work, `out-${name}`)
    fs.mkdirSync(out)
    // The manifest is written beside the corpus (its folder must hold every input), then moved to the restore's folder.
    const written = path.join(path.dirname(corpus.dir), `manifest-${name}.json`)
    const manifest = path.join(out, "manifest.json")
    const env = {
      ...process.env,
      CODEX_ARCHIVE_URL: archive.url,
      CODEX_EVIDENCE_DIR: path.join(work, `evidence-${name}`),
      CODEX_ACTOR: "growth",
      CODEX_ARCHIVE_LOG_LEVEL: "warning",
      PGOPTIONS: "--client-min-messages=warning"
    }
    const base = path.basename(corpus.dir)
    const store = yield* measure(`${backend} store`, work, [
      "node",
      settings.cli,
      "archive",
      "store",
      "growth",
      `${base}/`,
      "--commit",
      "growth",
      "--manifest-out",
      written
    ], { cwd: path.dirname(corpus.dir), env })
    // The corpus cache and the work folder may be on different file systems (a cache on disk, work in /dev/shm).
    fs.copyFileSync(written, manifest)
    fs.rmSync(written)
    const restore = yield* measure(`${backend} batch-restore`, work, [
      "node",
      settings.cli,
      "archive",
      "batch-restore",
      manifest,
      "--results",
      path.join(work, `results-${name}.json`)
    ], { cwd: work, env })
    yield* check(`${backend} batch-restore`, corpus.dir, path.join(out, base))
    yield* remove(out, env.CODEX_EVIDENCE_DIR, path.join(work, `results-${name}.json`))
    return [[backend, "store", store], [backend, "restore", restore]] as const
  }))

/** Medians per (files, target, operation), with each one's ratio to its floor. */
export const summarize = (measurements: ReadonlyArray<Measurement>): ReadonlyArray<Row> => {
  const groups = new Map<string, Array<Measurement>>()
  for (const m of measurements) {
    const key = `${m.files}\u0000${m.target}\u0000${m.operation}`
    groups.set(key, [...(groups.get(key) ?? []), m])
  }
  const median = Stats.median
  const medians = new Map([...groups].map(([key, ms]) => [key, median(ms.map((m) => m.seconds))]))
  return [...groups.values()].map((ms) => {
    const { files, target, operation } = ms[0]!
    const seconds = medians.get(`${files}\u0000${target}\u0000${operation}`)!
    const floor = medians.get(`${files}\u0000${floorOf[operation]}\u0000${operation}`)
    return {
      files,
      target,
      operation,
      seconds,
      us_per_file: (seconds / files) * 1e6,
      rss_mib: median(ms.map((m) => m.rss_mib)),
      vs_floor: floor === undefined ? Number.NaN : seconds / floor,
      runs: ms.map((m) => m.seconds)
    }
  })
}

export const run = (settings: Settings) =>
  Effect.gen(function*() {
    for (const tool of ["/usr/bin/time", "tar", "zstd", "diff"]) {
      if (spawnSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" }).status !== 0) {
        return yield* new GrowthFailed({
          step: "setup",
          detail: `${tool} is not installed (apt-get install time tar zstd diffutils)`
        })
      }
    }
    if (!fs.existsSync(settings.cli)) {
      return yield* new GrowthFailed({ step: "setup", detail: `${settings.cli} is missing (run npm run setup)` })
    }
    const work = yield* Effect.acquireRelease(
      Effect.sync(() => fs.mkdtempSync(path.join(settings.tmp, "codex-growth-"))),
      (dir) => remove(dir)
    )
    const measurements: Array<Measurement> = []
    const corpora: Array<Report["corpora"][number]> = []
    const problems: Array<string> = []
    for (const count of settings.counts) {
      const started = performance.now()
      const plan = Corpus.smallFiles(count, settings.seed)
      const corpus = settings.corpusCache === undefined
        ? Corpus.write(plan, path.join(work, `small-${count}`))
        : Corpus.cached(plan, settings.corpusCache, "small")
      corpora.push({ files: count, mib: corpus.totalBytes / MiB, digest: corpus.digest })
      yield* Effect.logInfo(
        `corpus: ${count} files, ${num(corpus.totalBytes / MiB)} MiB, digest ${corpus.digest} (${
          num((performance.now() - started) / 1000)
        } s)`
      )
      const tarball = path.join(work, "corpus.tar")
      const made = spawnSync("tar", ["-cf", tarball, "-C", corpus.dir, "."], { stdio: "ignore" })
      if (made.status !== 0) return yield* new GrowthFailed({ step: "tar -cf", detail: `could not write ${tarball}` })
      const steps: Array<
        (
          round: number
        ) => Effect.Effect<
          ReadonlyArray<readonly [Target, Operation, { seconds: number; rss_mib: number }]>,
          GrowthFailed
        >
      > = [
        () => floors(corpus, tarball, work),
        // A backend that fails (a server down) is reported, not the end of the run: the rest is still measured.
        ...settings.backends.map((backend) => (round: number) =>
          codex(settings, corpus, backend, work, `${process.pid}_${count}_${round}_${backend}`).pipe(
            Effect.catchAll((e) =>
              Effect.as(
                Effect.sync(() => problems.push(`${count} files, round ${round}: ${e.message}`)),
                []
              )
            )
          )
        )
      ]
      for (let round = 1; round <= settings.rounds; round++) {
        for (let i = 0; i < steps.length; i++) {
          for (const [target, operation, m] of yield* steps[(i + round - 1) % steps.length]!(round)) {
            measurements.push({ files: count, target, operation, round, ...m })
            yield* Effect.logInfo(
              `${count} files, round ${round}: ${target} ${operation} ${num(m.seconds)} s, ${num(m.rss_mib)} MiB`
            )
          }
        }
      }
      yield* remove(tarball)
    }
    return {
      command: settings.command,
      versions: Machine.versions(),
      machine: Machine.describe(),
      problems,
      rounds: settings.rounds,
      corpora,
      measurements,
      rows: summarize(measurements)
    } satisfies Report
  })
