/**
 * The arithmetic of the report: percentiles of one run's samples, the median and spread of a figure over runs, and
 * ratios to the filesystem floor computed pair by pair (each run divided by the floor run measured next to it).
 */

/** The p-th percentile (0–100) by linear interpolation between closest ranks (R type 7, numpy's default). */
export const percentile = (values: ReadonlyArray<number>, p: number): number => {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const rank = (Math.min(100, Math.max(0, p)) / 100) * (sorted.length - 1)
  const lo = Math.floor(rank)
  const hi = Math.ceil(rank)
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo)
}

export const median = (values: ReadonlyArray<number>): number => percentile(values, 50)

/** A figure over several runs: its median and spread. */
export interface Summary {
  readonly median: number
  readonly min: number
  readonly max: number
  /** First and third quartiles. */
  readonly q1: number
  readonly q3: number
  readonly n: number
}

export const summarize = (values: ReadonlyArray<number>): Summary => {
  const finite = values.filter(Number.isFinite)
  return {
    median: median(finite),
    min: finite.length === 0 ? Number.NaN : Math.min(...finite),
    max: finite.length === 0 ? Number.NaN : Math.max(...finite),
    q1: percentile(finite, 25),
    q3: percentile(finite, 75),
    n: finite.length
  }
}

/** Latency figures of one run, in the unit of the samples. */
export const latency = (samples: ReadonlyArray<number>) => ({
  p50: percentile(samples, 50),
  p95: percentile(samples, 95),
  p99: percentile(samples, 99),
  max: samples.length === 0 ? Number.NaN : Math.max(...samples)
})

/**
 * Ratios of paired measurements: `subject[i] / floor[i]` for every pair where both are known and the floor is not
 * zero. Pairing (rather than dividing medians) cancels the drift of a shared machine between runs.
 */
export const pairedRatios = (pairs: ReadonlyArray<readonly [subject: number, floor: number]>): ReadonlyArray<number> =>
  pairs.filter(([s, f]) => Number.isFinite(s) && Number.isFinite(f) && f !== 0).map(([s, f]) => s / f)
