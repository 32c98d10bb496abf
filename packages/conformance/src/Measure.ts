/**
 * In-process figures for choosing a backend: store throughput (one `store` of a mixed corpus, and one `store` per file)
 * and single-restore latency p50/p95/p99, measured through the Archiver and Restorer as the CLI calls them. Sized by
 * `CODEX_MEASURE_FILES` (default 200, small enough for every test run); prints one line per figure.
 */
import { Archiver, Restorer } from "@codex-archive/core"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as path from "node:path"
import { type Backend, noise, withArchive, write } from "./Fixtures.js"

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!

/** Code-like text of about `size` bytes: compressible as source files are. */
const codeLike = (size: number, seed: number) => {
  const words = [
    "const",
    "return",
    "function",
    "import",
    "export",
    "value",
    "yield*",
    "Effect",
    "=>",
    "{",
    "}",
    "if",
    "else",
    "archive"
  ]
  const out: Array<string> = []
  let x = seed
  for (let n = 0; n < size;) {
    x = (x * 1103515245 + 12345) >>> 0
    const w = words[x % words.length]!
    out.push(w)
    n += w.length + 1
  }
  return out.join(x % 3 === 0 ? "\n" : " ").slice(0, size)
}

export const measureSuite = (backend: Backend) =>
  describe(`${backend.name} measurements`, () => {
    const files = Number(process.env.CODEX_MEASURE_FILES || 200)
    it.live(`store throughput and single-restore latency over ${files} files`, () =>
      withArchive(backend, (dir) =>
        Effect.gen(function*() {
          const archiver = yield* Archiver.Archiver
          const restorer = yield* Restorer.Restorer
          let bytes = 0
          for (let i = 0; i < files; i++) {
            const size = i % 50 === 49 ? 2 * 1024 * 1024 : 512 + ((i * 7919) % 48) * 1024
            const content = i % 50 === 49 ? noise(size, i) : codeLike(size, i)
            bytes += size
            write(path.join(dir, "corpus", `d${i % 10}`, `f${i}.ts`), content)
          }
          const options = {
            repo: "acme/bench",
            actor: "bench",
            commit: "b3nch",
            reason: "dead",
            kind: "code",
            cwd: dir
          } as const
          const t0 = performance.now()
          const report = yield* archiver.store([path.join(dir, "corpus")], options)
          const batchMs = performance.now() - t0
          const single = Math.min(50, files)
          const t1 = performance.now()
          for (let i = 0; i < single; i++) {
            yield* archiver.store([write(path.join(dir, "single", `s${i}.ts`), codeLike(4096, 10_000 + i))], options)
          }
          const singleMs = performance.now() - t1
          const latencies: Array<number> = []
          const phases: Record<"fetch_ms" | "decompression_ms" | "write_ms" | "record_ms", Array<number>> = {
            fetch_ms: [],
            decompression_ms: [],
            write_ms: [],
            record_ms: []
          }
          for (const [i, s] of report.stored.entries()) {
            const t = performance.now()
            const outcome = yield* restorer.restore({
              tombstone: s.tombstone,
              output: path.join(dir, "out", `${i}`),
              actor: "bench"
            })
            latencies.push(performance.now() - t)
            for (const [k, v] of Object.entries(phases)) {
              v.push(outcome.timings[k as keyof typeof phases])
            }
            expect(outcome.sha256).toBe(s.sha256)
          }
          latencies.sort((a, b) =>
            a - b
          )
          const ms = (n: number) => n.toFixed(2)
          console.log([
            `[${backend.name}] store, one call for ${files} files (${(bytes / 1048576).toFixed(1)} MiB): ${
              ms(batchMs)
            } ms = ${(files / (batchMs / 1000)).toFixed(0)} files/s, ${
              (bytes / 1048576 / (batchMs / 1000)).toFixed(1)
            } MiB/s`,
            `[${backend.name}] store, one call per 4 KiB file (${single}): ${
              (single / (singleMs / 1000)).toFixed(0)
            } files/s`,
            `[${backend.name}] single restore latency over ${latencies.length}: p50 ${
              ms(percentile(latencies, 50))
            } ms, p95 ${ms(percentile(latencies, 95))} ms, p99 ${ms(percentile(latencies, 99))} ms (phase medians: ${
              Object.entries(phases).map(([k, v]) =>
                `${k.replace("_ms", "")} ${ms(percentile(v.sort((a, b) => a - b), 50))}`
              ).join(", ")
            } ms)`
          ].join("\n"))
        })), 600_000)
  })
