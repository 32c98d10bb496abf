/**
 * What a bench run measures and reports: raw samples (one per scenario, target and run), and the figures derived
 * from them (median and spread over runs, ratios to the floor measured next to each run).
 */
import * as Stats from "./Stats.js"

export type ScenarioName = "store" | "restore" | "batch" | "cli"
export const scenarioNames: ReadonlyArray<ScenarioName> = ["store", "restore", "batch", "cli"]

/** Floor targets: Node `fs` copies and `tar -xf`. */
export const floorTargets = ["fs", "tar"] as const

export interface Sample {
  /** `store`, `restore-small`, `restore-large`, `batch-c<N>`, `cli-cold`. */
  readonly scenario: string
  /** A backend name, or a floor target (`fs`, `tar`). */
  readonly target: string
  /** Measured run index (warm-up runs are not kept). */
  readonly run: number
  /** For a floor sample: the backend measured next to it, which this sample is the pair of. */
  readonly pairedWith?: string
  /** Durations end in `_ms` or are `seconds`; the rest are rates and counts. */
  readonly values: Readonly<Record<string, number>>
  /** Figures read from the core's metrics (histogram means, counters) for the same work. */
  readonly core?: Readonly<Record<string, number>>
}

export interface Unavailable {
  readonly scenario: string
  readonly target: string
  readonly reason: string
  /** The measured run (or -1 for a warm-up) where this was first seen; later runs may have succeeded. */
  readonly run: number
}

export interface Figure {
  readonly scenario: string
  readonly target: string
  readonly values: Readonly<Record<string, Stats.Summary>>
  readonly core: Readonly<Record<string, Stats.Summary>>
  /** Per duration key: this target's run divided by the paired floor run, summarized (backends only). */
  readonly ratios: Readonly<Record<string, Readonly<Record<string, Stats.Summary>>>>
}

export const isDuration = (key: string) => key.endsWith("_ms") || key === "seconds"

const groupBy = <A>(items: ReadonlyArray<A>, key: (a: A) => string): Map<string, Array<A>> => {
  const groups = new Map<string, Array<A>>()
  for (const item of items) {
    const k = key(item)
    const list = groups.get(k)
    if (list) list.push(item)
    else groups.set(k, [item])
  }
  return groups
}

const summarizeKeys = (records: ReadonlyArray<Readonly<Record<string, number>> | undefined>) => {
  const keys = [...new Set(records.flatMap((r) => (r ? Object.keys(r) : [])))]
  return Object.fromEntries(keys.map((k) => [k, Stats.summarize(records.map((r) => r?.[k] ?? Number.NaN))]))
}

/** Figures in first-seen order of scenario, then target. */
export const figures = (samples: ReadonlyArray<Sample>): ReadonlyArray<Figure> => {
  const floors = samples.filter((s) => s.pairedWith !== undefined)
  return [...groupBy(samples, (s) => `${s.scenario}\u0000${s.target}`).values()].map((group): Figure => {
    const { scenario, target } = group[0]!
    const ratios: Record<string, Record<string, Stats.Summary>> = {}
    if (group[0]!.pairedWith === undefined) {
      for (const floor of floorTargets) {
        const paired = floors.filter((f) => f.scenario === scenario && f.target === floor && f.pairedWith === target)
        if (paired.length === 0) continue
        const keys = Object.keys(group[0]!.values).filter(isDuration)
        ratios[floor] = Object.fromEntries(keys.map((k) => [
          k,
          Stats.summarize(
            Stats.pairedRatios(group.map((s) =>
              [
                s.values[k] ?? Number.NaN,
                paired.find((f) => f.run === s.run)?.values[k] ?? Number.NaN
              ] as const
            ))
          )
        ]))
      }
    }
    return {
      scenario,
      target,
      values: summarizeKeys(group.map((s) => s.values)),
      core: summarizeKeys(group.map((s) => s.core)),
      ratios
    }
  })
}
