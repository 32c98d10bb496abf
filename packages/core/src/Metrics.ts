/** Every metric of the tool, in one place (as `ClusterMetrics` does): restore phases, counts, bytes, retries. */
import {
  Context,
  Effect,
  FiberRef,
  Layer,
  Metric,
  MetricBoundaries,
  type MetricLabel,
  type MetricPair,
  MetricState,
  Option
} from "effect"
import type { Outcome } from "./Restorer.js"

// 0.1 ms .. ~52 s in ×2 steps: covers a cached small restore and a large file on a slow server.
const boundaries = MetricBoundaries.exponential({ start: 0.1, factor: 2, count: 20 })
const histogram = (name: string, description: string) => Metric.histogram(name, boundaries, description)

export const restoreDuration = histogram("codex_archive_restore_duration_ms", "Whole restore of one item")
export const fetchDuration = histogram("codex_archive_restore_fetch_ms", "Fetching the payload from the store")
export const decompressDuration = histogram("codex_archive_restore_decompress_ms", "Decompressing the payload")
export const verifyDuration = histogram("codex_archive_restore_verify_ms", "Checking the SHA-256 of restored bytes")
export const writeDuration = histogram("codex_archive_restore_write_ms", "Writing and renaming the output file")
export const recordDuration = histogram("codex_archive_restore_record_ms", "Recording the restore in the store")
export const storeDuration = histogram(
  "codex_archive_store_duration_ms",
  "One store call: hash, one transaction, evidence, stubs"
)

export const restores = Metric.counter("codex_archive_restores_total", { description: "Restores that succeeded" })
export const restoreFailures = Metric.counter("codex_archive_restore_failures_total", {
  description: "Restores that failed"
})
export const restoredBytes = Metric.counter("codex_archive_restored_bytes_total", { description: "Bytes restored" })
export const stored = Metric.counter("codex_archive_stored_total", { description: "Files stored" })
export const storedBytes = Metric.counter("codex_archive_stored_bytes_total", { description: "Raw bytes stored" })
export const retries = Metric.counter("codex_archive_retries_total", { description: "Database calls retried" })

/**
 * Records finished restores in one effect: a batch finishes thousands, and eight `Metric.update` effects per item
 * cost more main-thread time than the restore's own bookkeeping. Labels are the fiber's, as with `Metric.update`.
 */
export const recordRestores = (done: ReadonlyArray<Pick<Outcome, "bytes" | "timings">>): Effect.Effect<void> =>
  done.length === 0 ? Effect.void : FiberRef.getWith(FiberRef.currentMetricLabels, (tags) =>
    Effect.sync(() => {
      for (const { bytes, timings: t } of done) {
        restoreDuration.unsafeUpdate(t.duration_ms, tags)
        fetchDuration.unsafeUpdate(t.fetch_ms, tags)
        decompressDuration.unsafeUpdate(t.decompression_ms, tags)
        verifyDuration.unsafeUpdate(t.verify_ms, tags)
        writeDuration.unsafeUpdate(t.write_ms, tags)
        recordDuration.unsafeUpdate(t.record_ms, tags)
        restoredBytes.unsafeUpdate(bytes, tags)
      }
      restores.unsafeUpdate(done.length, tags)
    }))

export const all = [
  restoreDuration,
  fetchDuration,
  decompressDuration,
  verifyDuration,
  writeDuration,
  recordDuration,
  storeDuration,
  restores,
  restoreFailures,
  restoredBytes,
  stored,
  storedBytes,
  retries
] as const

const prefix = "codex_archive_"

const labels = (tags: ReadonlyArray<MetricLabel.MetricLabel>, extra: ReadonlyArray<readonly [string, string]> = []) => {
  const all = [...tags.map((t) => [t.key, t.value] as const), ...extra]
  if (all.length === 0) return ""
  const escape = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, "\\\"").replace(/\n/g, "\\n")
  return `{${all.map(([k, v]) => `${k}="${escape(v)}"`).join(",")}}`
}

const number = (n: number) => (n === Infinity ? "+Inf" : n === -Infinity ? "-Inf" : Number.isNaN(n) ? "NaN" : String(n))

/**
 * The final values of every metric of the tool in the Prometheus text format (0.0.4), for `--metrics-out FILE`:
 * counters, and histograms with cumulative buckets, sum and count. Metrics never touched are shown at zero.
 */
export const prometheus = (): Effect.Effect<string> =>
  Effect.gen(function*() {
    // Reading each metric registers it, so untouched ones are exported too (as zero).
    yield* Effect.forEach(all, (metric) => Metric.value(metric as Metric.Metric<any, any, any>), { discard: true })
    const pairs = (yield* Metric.snapshot).filter((pair) => pair.metricKey.name.startsWith(prefix))
    const byName = new Map<string, Array<MetricPair.MetricPair.Untyped>>()
    for (const pair of pairs) byName.set(pair.metricKey.name, [...(byName.get(pair.metricKey.name) ?? []), pair])
    const out: Array<string> = []
    for (const name of [...byName.keys()].sort()) {
      const group = byName.get(name)!.sort((a, b) => labels(a.metricKey.tags).localeCompare(labels(b.metricKey.tags)))
      const first = group[0]!
      const state = first.metricState
      const type = MetricState.isCounterState(state)
        ? "counter"
        : MetricState.isHistogramState(state)
        ? "histogram"
        : MetricState.isGaugeState(state)
        ? "gauge"
        : "untyped"
      const help = Option.getOrElse(first.metricKey.description, () => name)
      out.push(`# HELP ${name} ${help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`, `# TYPE ${name} ${type}`)
      for (const pair of group) {
        const s = pair.metricState
        const tags = pair.metricKey.tags
        if (MetricState.isCounterState(s)) out.push(`${name}${labels(tags)} ${number(Number(s.count))}`)
        else if (MetricState.isGaugeState(s)) out.push(`${name}${labels(tags)} ${number(Number(s.value))}`)
        else if (MetricState.isHistogramState(s)) {
          for (const [bound, count] of s.buckets) {
            out.push(`${name}_bucket${labels(tags, [["le", number(bound)]])} ${count}`)
          }
          out.push(`${name}_sum${labels(tags)} ${number(s.sum)}`, `${name}_count${labels(tags)} ${s.count}`)
        }
      }
    }
    return out.join("\n") + "\n"
  })

/** The archive's metrics as a service, for hosts that read them through their layers rather than this module. */
export class ArchiveMetrics extends Context.Tag("@codex-archive/core/ArchiveMetrics")<ArchiveMetrics, {
  /** Every metric of the archive now, in the Prometheus text format. */
  readonly prometheus: Effect.Effect<string>
}>() {}

export const layer: Layer.Layer<ArchiveMetrics> = Layer.succeed(ArchiveMetrics, {
  prometheus: Effect.suspend(prometheus)
})
