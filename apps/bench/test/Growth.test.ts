import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Cli from "../src/Cli.js"
import * as Corpus from "../src/Corpus.js"
import * as Growth from "../src/Growth.js"
import * as GrowthReport from "../src/Report/Growth.js"
import * as Xml from "./Xml.js"

const measured = (
  files: number,
  target: Growth.Target,
  operation: Growth.Operation,
  seconds: ReadonlyArray<number>,
  rss: number
) => seconds.map((s, i): Growth.Measurement => ({ files, target, operation, round: i + 1, seconds: s, rss_mib: rss }))

const measurements = [10_000, 100_000].flatMap((files) => [
  ...measured(files, "tar -cf | zstd -3", "store", [files / 50_000, files / 40_000, files / 60_000], 20),
  ...measured(files, "tar -xf", "restore", [files / 30_000, files / 30_000, files / 30_000], 3),
  ...measured(files, "sqlite", "store", [files / 2_000, files / 1_000, files / 4_000], files / 1_000 + 100),
  ...measured(files, "sqlite", "restore", [files / 10_000, files / 12_000, files / 8_000], 150)
])

describe("growth", () => {
  it("the small-files corpus: 1–16 KiB text, 100 to a folder, the same bytes for the same seed", () => {
    const plan = Corpus.smallFiles(1_000, 7)
    expect(plan.files).toHaveLength(1_000)
    expect(plan.files.every((f) => f.kind === "text" && f.size >= 1024 && f.size <= 16 * 1024)).toBe(true)
    const folders = new Map<string, number>()
    for (const f of plan.files) {
      folders.set(f.path.replace(/\/[^/]+$/, ""), (folders.get(f.path.replace(/\/[^/]+$/, "")) ?? 0) + 1)
    }
    expect([...folders.values()]).toEqual(Array(10).fill(100))
    expect(Corpus.smallFiles(1_000, 7)).toEqual(plan)
    expect(Corpus.smallFiles(1_000, 8).files.map((f) => f.contentSeed)).not.toEqual(
      plan.files.map((f) => f.contentSeed)
    )
  })

  it("summarizes medians per files, target and operation, with µs per file and the ratio to the tar floor", () => {
    const rows = Growth.summarize(measurements)
    const at = (files: number, target: Growth.Target, operation: Growth.Operation) =>
      rows.find((r) => r.files === files && r.target === target && r.operation === operation)!
    expect(at(10_000, "sqlite", "store")).toMatchObject({ seconds: 5, us_per_file: 500, rss_mib: 110, vs_floor: 25 })
    expect(at(100_000, "sqlite", "restore").seconds).toBeCloseTo(100_000 / 10_000)
    expect(at(100_000, "sqlite", "restore").vs_floor).toBeCloseTo(3)
    expect(at(100_000, "tar -xf", "restore").vs_floor).toBe(1)
    expect(rows).toHaveLength(8)
  })

  it("renders the table with a row per backend and the floor, and a well-formed SVG naming every target", () => {
    const report: Growth.Report = {
      command: "node apps/bench/dist/bench.mjs growth",
      versions: { node: "v20.20.2" },
      machine: { cpus: 2, cpu_model: "x", memory_gib: 24, os: "Linux" },
      problems: ["100000 files, round 2: growth: postgres archive: cannot reach the server"],
      rounds: 3,
      corpora: [{ files: 10_000, mib: 83, digest: "d1" }, { files: 100_000, mib: 830, digest: "d2" }],
      measurements,
      rows: Growth.summarize(measurements)
    }
    const table = GrowthReport.markdown(report)
    expect(table).toContain("| 10,000 | 83.0 | sqlite | 5.00 s (500 µs/file) | 110 MiB | 25.0× |")
    expect(table).toContain("| 100,000 | 830 | tar (floor) |")
    // What failed is said under the table, which still holds every figure measured.
    expect(table).toContain(
      "\nNot measured: 100000 files, round 2: growth: postgres archive: cannot reach the server\n"
    )
    const svg = Xml.parse(GrowthReport.svg(report))
    expect(svg.root).toBe("svg")
    for (const label of ["sqlite", "tar -cf | zstd -3", "tar -xf", "sqlite store", "sqlite restore"]) {
      expect(svg.texts).toContain(label)
    }
  })

  it.effect("rejects file counts that are not positive integers, naming the flag", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Cli.growth({
        files: "10000,abc",
        rounds: 1,
        seed: 42,
        backends: "sqlite",
        out: "x",
        pgUrl: "",
        mariadbUrl: "",
        cli: "",
        tmp: "/tmp",
        corpusCache: "none"
      }))
      expect(error.message).toBe(
        "--files '10000,abc': expected a list of positive file counts, e.g. 10000,100000,1000000"
      )
    }))
})
