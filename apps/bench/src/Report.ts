/**
 * The report document and its three renderings, written side by side into the output folder: `bench.json`
 * (everything, including raw samples), `bench.md` (the tables) and `bench.svg` (the charts).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import * as Markdown from "./Report/Markdown.js"
import * as Svg from "./Report/Svg.js"
import type { Figure, Sample, Unavailable } from "./Results.js"

export interface Report {
  readonly tool: string
  readonly created_at: string
  readonly command: string
  readonly seed: number
  readonly corpus: { readonly spec: string; readonly files: number; readonly bytes: number; readonly digest: string }
  readonly settings: {
    readonly backends: ReadonlyArray<string>
    readonly scenarios: ReadonlyArray<string>
    readonly runs: number
    readonly warmup: number
    readonly concurrency: ReadonlyArray<number>
    readonly latency_files: { readonly small: number; readonly large: number }
    readonly cli_invocations: number
    readonly tar: boolean
  }
  readonly versions: Readonly<Record<string, string>>
  readonly machine: {
    readonly cpus: number
    readonly cpu_model: string
    readonly memory_gib: number
    readonly os: string
  }
  readonly figures: ReadonlyArray<Figure>
  readonly unavailable: ReadonlyArray<Unavailable>
  /** Backends whose run failed (the bench went on without them). */
  readonly failures: ReadonlyArray<string>
  readonly samples: ReadonlyArray<Sample>
  readonly duration_s: number
}

export interface Written {
  readonly json: string
  readonly markdown: string
  readonly svg: string
}

/** NaN and infinities are not JSON: they become null. */
const toJson = (report: Report) =>
  JSON.stringify(report, (_, v) => (typeof v === "number" && !Number.isFinite(v) ? null : v), 2) + "\n"

export const write = (report: Report, dir: string): Written => {
  fs.mkdirSync(dir, { recursive: true })
  const written = {
    json: path.join(dir, "bench.json"),
    markdown: path.join(dir, "bench.md"),
    svg: path.join(dir, "bench.svg")
  }
  fs.writeFileSync(written.json, toJson(report))
  fs.writeFileSync(written.markdown, Markdown.render(report))
  fs.writeFileSync(written.svg, Svg.render(report))
  return written
}
