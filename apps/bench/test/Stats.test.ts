import { describe, expect, it } from "@effect/vitest"
import type { Sample } from "../src/Results.js"
import { figures } from "../src/Results.js"
import * as Stats from "../src/Stats.js"

describe("Stats", () => {
  it("interpolates percentiles between closest ranks", () => {
    const values = [10, 1, 9, 2, 8, 3, 7, 4, 6, 5]
    expect(Stats.percentile(values, 0)).toBe(1)
    expect(Stats.percentile(values, 100)).toBe(10)
    expect(Stats.percentile(values, 50)).toBe(5.5)
    expect(Stats.percentile(values, 95)).toBeCloseTo(9.55, 10)
    expect(Stats.percentile(values, 99)).toBeCloseTo(9.91, 10)
    expect(Stats.percentile([42], 99)).toBe(42)
    expect(Stats.percentile([], 50)).toBeNaN()
    expect(Stats.latency([5, 1, 3])).toEqual({ p50: 3, p95: 4.8, p99: 4.96, max: 5 })
  })

  it("summarizes runs by their median and spread, ignoring what was not measured", () => {
    expect(Stats.summarize([4, 1, 3, 2, Number.NaN])).toEqual({ median: 2.5, min: 1, max: 4, q1: 1.75, q3: 3.25, n: 4 })
    expect(Stats.summarize([]).n).toBe(0)
  })

  it("divides pair by pair, skipping incomplete pairs and a zero floor", () => {
    expect(Stats.pairedRatios([[6, 2], [9, 3], [5, 0], [Number.NaN, 1], [8, 4]])).toEqual([3, 3, 2])
  })

  it("pairs each backend run with the floor run measured next to it, not with the floor's median", () => {
    const sample = (target: string, run: number, seconds: number, pairedWith?: string): Sample => ({
      scenario: "store",
      target,
      run,
      ...(pairedWith ? { pairedWith } : {}),
      values: { seconds, mib_s: 100 / seconds }
    })
    const samples = [
      sample("sqlite", 0, 2),
      sample("fs", 0, 1, "sqlite"),
      sample("sqlite", 1, 8),
      sample("fs", 1, 4, "sqlite"),
      sample("sqlite", 2, 3),
      sample("fs", 2, 1, "sqlite"),
      // Another backend's floors must not pair with sqlite's runs.
      sample("postgres", 0, 10),
      sample("fs", 0, 100, "postgres")
    ]
    const [sqlite, floor, postgres] = figures(samples)
    expect(sqlite!.target).toBe("sqlite")
    expect(sqlite!.values["seconds"]!.median).toBe(3)
    // Paired ratios 2, 2, 3 → median 2; dividing medians (3 / 1) would say 3.
    expect(sqlite!.ratios["fs"]!["seconds"]).toMatchObject({ median: 2, min: 2, max: 3, n: 3 })
    // Rates are not ratios to the floor: only durations are.
    expect(sqlite!.ratios["fs"]!["mib_s"]).toBeUndefined()
    expect(floor!.target).toBe("fs")
    expect(floor!.values["seconds"]!.n).toBe(4)
    expect(postgres!.ratios["fs"]!["seconds"]!.median).toBe(0.1)
  })
})
