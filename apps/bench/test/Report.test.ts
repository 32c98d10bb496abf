import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as Cli from "../src/Cli.js"
import * as Report from "../src/Report.js"
import * as Markdown from "../src/Report/Markdown.js"
import * as Svg from "../src/Report/Svg.js"
import { figures, type Sample } from "../src/Results.js"
import { tempDir } from "./helpers.js"
import * as Xml from "./Xml.js"

const backends = ["sqlite", "postgres", "mariadb"]

const samplesFor = (target: string, factor: number): Array<Sample> =>
  [0, 1, 2].flatMap((run): Array<Sample> => [
    {
      scenario: "store",
      target,
      run,
      values: { seconds: 2 * factor + run, mib_s: 40 / factor, files_s: 500 / factor },
      core: { compression_ratio: 3.6 }
    },
    { scenario: "store", target: "fs", run, pairedWith: target, values: { seconds: 0.5, mib_s: 160, files_s: 2000 } },
    ...(["restore-small", "restore-large"] as const).flatMap((scenario): Array<Sample> => [
      {
        scenario,
        target,
        run,
        values: { p50_ms: 1 * factor, p95_ms: 2 * factor, p99_ms: 3 * factor, max_ms: 4 * factor + run },
        core: {
          mean_ms: 1.5 * factor,
          fetch_ms: 0.5,
          decompress_ms: 0.25,
          verify_ms: 0.125,
          write_ms: 0.5,
          record_ms: 0.125
        }
      },
      {
        scenario,
        target: "fs",
        run,
        pairedWith: target,
        values: { p50_ms: 0.1, p95_ms: 0.2, p99_ms: 0.3, max_ms: 0.5 }
      }
    ]),
    ...[1, 4, 16].flatMap((c): Array<Sample> => [
      {
        scenario: `batch-c${c}`,
        target,
        run,
        values: { seconds: 4 / Math.sqrt(c) / factor, mib_s: 20 * Math.sqrt(c) * factor, files_s: 250 }
      },
      {
        scenario: `batch-c${c}`,
        target: "fs",
        run,
        pairedWith: target,
        values: { seconds: 1, mib_s: 80, files_s: 1000 }
      },
      {
        scenario: `batch-c${c}`,
        target: "tar",
        run,
        pairedWith: target,
        values: { seconds: 0.8, mib_s: 100, files_s: 1250 }
      }
    ]),
    { scenario: "cli-cold", target, run, values: { p50_ms: 250, max_ms: 300 } },
    { scenario: "cli-cold", target: "fs", run, pairedWith: target, values: { p50_ms: 60, max_ms: 70 } }
  ])

const report = (measured: ReadonlyArray<string>): Report.Report => {
  const samples = measured.flatMap((b, i) => samplesFor(b, i + 1))
  return {
    tool: "codex-archive bench",
    created_at: "2026-01-01T00:00:00.000Z",
    command: "node apps/bench/dist/bench.mjs --backends sqlite,postgres,mariadb",
    seed: 42,
    corpus: { spec: "small", files: 1000, bytes: 88 * 1024 * 1024, digest: "ab".repeat(32) },
    settings: {
      backends,
      scenarios: ["store", "restore", "batch", "cli"],
      runs: 3,
      warmup: 1,
      concurrency: [1, 4, 16],
      latency_files: { small: 100, large: 12 },
      cli_invocations: 3,
      tar: true
    },
    versions: { node: "v20.20.2", effect: "3.22.4" },
    machine: { cpus: 2, cpu_model: "Test CPU <&> \"quoted\"", memory_gib: 24, os: "Linux" },
    figures: figures(samples),
    unavailable: backends.filter((b) => !measured.includes(b)).map((target) => ({
      scenario: "*",
      target,
      reason: "no layer yet",
      run: 0
    })),
    failures: [],
    samples,
    duration_s: 12.5
  }
}

describe("report writers", () => {
  it("writes an SVG that is well-formed XML and names every backend", () => {
    for (const measured of [backends, ["sqlite", "postgres"], []]) {
      const parsed = Xml.parse(Svg.render(report(measured)))
      expect(parsed.root).toBe("svg")
      const text = parsed.texts.join("\n")
      for (const b of backends) expect(text).toContain(b)
      expect(text).toContain("Test CPU <&> \"quoted\"")
    }
  })

  it("rejects malformed XML (the checker itself)", () => {
    expect(() => Xml.parse("<svg><g></svg>")).toThrow(/closes/)
    expect(() => Xml.parse("<svg a=1/>")).toThrow(/malformed/)
    expect(() => Xml.parse("<svg>a & b</svg>")).toThrow(/bare/)
  })

  it("writes Markdown tables with medians, spreads and paired ratios for each backend and the floors", () => {
    const md = Markdown.render(report(["sqlite", "postgres"]))
    expect(md).toContain("| target | time (s) | MiB/s | files/s | × fs copy | zstd ratio |")
    // sqlite store: seconds 2, 3, 4 against a 0.5 s floor → 6× (4–8×).
    expect(md).toContain("| sqlite | 3.00 (2.00–4.00) | 40.0 | 500 | 6.00× (4.00–8.00) | 3.60× |")
    expect(md).toContain("| floor: Node fs copy | 0.50 |")
    expect(md).toContain("| floor: tar -xf |")
    expect(md).toContain("`codex archive restore` on postgres")
    expect(md).toContain("- mariadb: no layer yet")
    // Every row of each table has as many cells as its header.
    const tables = md.split("\n\n").map((block) => block.split("\n").filter((l) => l.startsWith("|"))).filter((rows) =>
      rows.length > 0
    )
    expect(tables.length).toBe(5)
    expect(md).toContain("| sqlite | small | 1.50 | 0.50 | 0.25 | 0.13 | 0.50 | 0.13 |")
    for (const rows of tables) for (const row of rows) expect(row.split("|").length).toBe(rows[0]!.split("|").length)
  })

  it("writes JSON, Markdown and SVG into the chosen folder; unmeasured numbers become null", () => {
    const dir = tempDir()
    const r = report(["sqlite"])
    const written = Report.write({
      ...r,
      samples: [...r.samples, { scenario: "store", target: "sqlite", run: 9, values: { seconds: Number.NaN } }]
    }, `${dir}/out`)
    const json = JSON.parse(fs.readFileSync(written.json, "utf8"))
    expect(json.corpus.digest).toBe("ab".repeat(32))
    expect(json.samples.at(-1).values.seconds).toBeNull()
    expect(
      json.figures.find((f: { scenario: string; target: string }) => f.scenario === "store" && f.target === "sqlite")
        .values.seconds.median
    ).toBe(3)
    expect(fs.readFileSync(written.markdown, "utf8")).toContain("**Store**")
    expect(Xml.parse(fs.readFileSync(written.svg, "utf8")).root).toBe("svg")
  })

  it.effect("re-renders a written bench.json into the same tables and chart", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const first = Report.write(report(["sqlite", "postgres"]), `${dir}/a`)
      yield* Cli.render(first.json, `${dir}/b`)
      expect(fs.readFileSync(`${dir}/b/bench.md`, "utf8")).toBe(fs.readFileSync(first.markdown, "utf8"))
      expect(fs.readFileSync(`${dir}/b/bench.svg`, "utf8")).toBe(fs.readFileSync(first.svg, "utf8"))
    }))
})
