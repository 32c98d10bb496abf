import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Backends from "../src/Backends.js"
import * as Report from "../src/Report.js"
import * as Runner from "../src/Runner.js"
import { tempDir } from "./helpers.js"
import * as Xml from "./Xml.js"

const settings = (tmp: string, overrides: Partial<Runner.Settings> = {}): Runner.Settings => ({
  corpus: "30",
  seed: 1,
  backends: ["sqlite"],
  scenarios: ["store", "restore", "batch", "cli"],
  runs: 1,
  warmup: 0,
  concurrency: [1, 4],
  servers: Backends.defaultUrls,
  cli: path.join(tmp, "no-such-cli.mjs"),
  tmp,
  corpusCache: undefined,
  latencyFiles: { small: 10, large: 3 },
  cliInvocations: 1,
  command: "test",
  ...overrides
})

describe("bench end to end on SQLite", () => {
  it.live("stores and restores a tiny corpus through the core, pairs every figure with its floor, and writes the report", () =>
    Effect.gen(function*() {
      const tmp = tempDir()
      const report = yield* Runner.run(settings(tmp))
      expect(report.failures).toEqual([])
      expect(report.corpus.files).toBe(30)
      const find = (scenario: string, target: string) =>
        report.figures.find((f) => f.scenario === scenario && f.target === target)
      const store = find("store", "sqlite")!
      // The core's counters saw every file stored, and the corpus text compressed.
      expect(store.core["stored"]!.median).toBe(30)
      expect(store.core["compression_ratio"]!.median).toBeGreaterThan(1.5)
      expect(store.ratios["fs"]!["seconds"]!.n).toBe(1)
      const small = find("restore-small", "sqlite")!
      expect(small.core["count"]!.median).toBe(report.settings.latency_files.small)
      expect(small.core["failures"]!.median).toBe(0)
      expect(small.values["p50_ms"]!.median).toBeLessThanOrEqual(small.values["max_ms"]!.median)
      expect(find("restore-small", "fs")).toBeDefined()
      for (const c of [1, 4]) {
        const batch = find(`batch-c${c}`, "sqlite")!
        expect(batch.core["restored"]!.median).toBe(30)
        expect(batch.core["failures"]!.median).toBe(0)
        expect(batch.ratios["fs"]!["seconds"]!.n).toBe(1)
      }
      // The CLI bundle is missing here: reported, not fatal.
      expect(report.unavailable).toContainEqual(
        expect.objectContaining({
          scenario: "cli-cold",
          target: "sqlite",
          reason: expect.stringContaining("no-such-cli.mjs")
        })
      )
      // Scratch space (corpus, archive, outputs) is gone.
      expect(fs.readdirSync(tmp)).toEqual([])
      const written = Report.write(report, path.join(tmp, "results"))
      expect(fs.readFileSync(written.markdown, "utf8")).toContain("| sqlite |")
      expect(Xml.parse(fs.readFileSync(written.svg, "utf8")).texts.join(" ")).toContain("sqlite")
    }))

  it.live("reports a server backend that cannot be reached as not measured, naming it, and still measures SQLite", () =>
    Effect.gen(function*() {
      const tmp = tempDir()
      const report = yield* Runner.run(settings(tmp, {
        corpus: "5",
        backends: ["sqlite", "postgres"],
        scenarios: ["store"],
        servers: { ...Backends.defaultUrls, postgres: "postgres://postgres@127.0.0.1:1/postgres" }
      }))
      expect(report.figures.some((f) => f.target === "sqlite")).toBe(true)
      const problem = [...report.unavailable.map((u) => `${u.target}: ${u.reason}`), ...report.failures].join("\n")
      expect(problem).toContain("postgres")
    }))

  it("rejects an unknown backend by name", () => {
    const exit = Effect.runSyncExit(Backends.parseList("sqlite,oracle"))
    expect(Exit.isFailure(exit) && String(exit.cause)).toContain("unknown backend 'oracle'")
    expect(Effect.runSync(Backends.parseList("SQLite, postgresql,mysql"))).toEqual(["sqlite", "postgres", "mariadb"])
  })
})
