/** Every metric of the tool, in one place (as `ClusterMetrics` does): restore phases, counts, bytes, retries. */
import { Metric, MetricBoundaries } from "effect"

// 0.1 ms .. ~52 s in ×2 steps: covers a cached small restore and a large file on a slow server.
const boundaries = MetricBoundaries.exponential({ start: 0.1, factor: 2, count: 20 })
const histogram = (name: string, description: string) => Metric.histogram(name, boundaries, description)

export const restoreDuration = histogram("codex_archive_restore_duration_ms", "Whole restore of one item")
export const fetchDuration = histogram("codex_archive_restore_fetch_ms", "Fetching the payload from the store")
export const decompressDuration = histogram("codex_archive_restore_decompress_ms", "Decompressing the payload")
export const verifyDuration = histogram("codex_archive_restore_verify_ms", "Checking the SHA-256 of restored bytes")
export const writeDuration = histogram("codex_archive_restore_write_ms", "Writing and renaming the output file")
export const recordDuration = histogram("codex_archive_restore_record_ms", "Recording the restore in the store")
export const storeDuration = histogram("codex_archive_store_duration_ms", "Storing one file")

export const restores = Metric.counter("codex_archive_restores_total", { description: "Restores that succeeded" })
export const restoreFailures = Metric.counter("codex_archive_restore_failures_total", { description: "Restores that failed" })
export const restoredBytes = Metric.counter("codex_archive_restored_bytes_total", { description: "Bytes restored" })
export const stored = Metric.counter("codex_archive_stored_total", { description: "Files stored" })
export const storedBytes = Metric.counter("codex_archive_stored_bytes_total", { description: "Raw bytes stored" })
export const retries = Metric.counter("codex_archive_retries_total", { description: "Database calls retried" })

export const all = [
  restoreDuration, fetchDuration, decompressDuration, verifyDuration, writeDuration, recordDuration, storeDuration,
  restores, restoreFailures, restoredBytes, stored, storedBytes, retries
] as const
