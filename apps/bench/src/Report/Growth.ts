/**
 * The growth report: a Markdown table (per target and file count: seconds, µs per file, peak RSS, ratio to the tar
 * floor) and an SVG of µs per file and peak RSS against the number of files, so a flat line means a constant cost.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import type { Operation, Report, Row, Target } from "../Growth.js"
import { num } from "./Format.js"
import { axis, escape, linearScale, logScale, palette, text } from "./Svg.js"

const floorTargets: ReadonlyArray<Target> = ["tar -cf | zstd -3", "tar -xf"]
const isFloor = (t: Target) => floorTargets.includes(t)

const targetsOf = (rows: ReadonlyArray<Row>): ReadonlyArray<Target> => [...new Set(rows.map((r) => r.target))]

export const markdown = (report: Report): string => {
  const counts = [...new Set(report.rows.map((r) => r.files))].sort((a, b) => a - b)
  const backends = targetsOf(report.rows).filter((t) => !isFloor(t))
  const row = (files: number, target: Target, operation: Operation) =>
    report.rows.find((r) => r.files === files && r.target === target && r.operation === operation)
  const cell = (r: Row | undefined) => (r === undefined ? "–" : `${num(r.seconds)} s (${num(r.us_per_file)} µs/file)`)
  const lines = [
    `Growth: small files (1–16 KiB, 100 to a folder), ${report.rounds} round(s), medians. \`${report.command}\``,
    "",
    "| files | MiB | target | store | store peak RSS | vs `tar -cf \\| zstd -3` | batch restore | restore peak RSS | vs `tar -xf` |",
    "|---:|---:|---|---:|---:|---:|---:|---:|---:|"
  ]
  for (const files of counts) {
    const mib = report.corpora.find((c) => c.files === files)?.mib ?? Number.NaN
    for (const target of backends) {
      const store = row(files, target, "store")
      const restore = row(files, target, "restore")
      lines.push(
        `| ${files.toLocaleString("en-US")} | ${num(mib)} | ${target} | ${cell(store)} | ${
          num(store?.rss_mib ?? Number.NaN)
        } MiB | ${num(store?.vs_floor ?? Number.NaN)}× | ${cell(restore)} | ${
          num(restore?.rss_mib ?? Number.NaN)
        } MiB | ${num(restore?.vs_floor ?? Number.NaN)}× |`
      )
    }
    const packed = row(files, "tar -cf | zstd -3", "store")
    const extracted = row(files, "tar -xf", "restore")
    lines.push(
      `| ${files.toLocaleString("en-US")} | ${num(mib)} | tar (floor) | ${cell(packed)} | ${
        num(packed?.rss_mib ?? Number.NaN)
      } MiB | 1× | ${cell(extracted)} | ${num(extracted?.rss_mib ?? Number.NaN)} MiB | 1× |`
    )
  }
  for (const problem of report.problems ?? []) lines.push("", `Not measured: ${problem}`)
  return lines.join("\n") + "\n"
}

const width = 1260
const height = 430
const panelWidth = 380
const panelTop = 80
const plotHeight = 260

/** One panel: `value` of each target's rows against the file count (log scale), a line per target. */
const panel = (
  x: number,
  title: string,
  unit: string,
  rows: ReadonlyArray<Row>,
  value: (r: Row) => number,
  log: boolean
) => {
  const parts = [text(x + panelWidth / 2, panelTop - 30, title, `text-anchor="middle" font-weight="bold"`)]
  const bottom = panelTop + plotHeight
  const left = x + 55
  const right = x + panelWidth - 10
  const counts = [...new Set(rows.map((r) => r.files))].sort((a, b) => a - b)
  if (rows.length === 0) {
    return parts.join("") +
      text(x + panelWidth / 2, panelTop + plotHeight / 2, "not measured", `text-anchor="middle" fill="#888"`)
  }
  const { ticks, y } = (log ? logScale : linearScale)(rows.map(value), bottom, panelTop)
  parts.push(axis(left, right, bottom, ticks, y))
  const lo = Math.log10(counts[0]!)
  const span = Math.max(1e-9, Math.log10(counts.at(-1)!) - lo)
  const px = (files: number) =>
    counts.length === 1 ? (left + right) / 2 : left + 20 + ((Math.log10(files) - lo) / span) * (right - left - 40)
  for (const files of counts) {
    parts.push(text(px(files), bottom + 16, files.toLocaleString("en-US"), `text-anchor="middle"`))
  }
  targetsOf(rows).forEach((target, i) => {
    const color = isFloor(target) ? "#888888" : palette[i % palette.length]
    const points = rows.filter((r) => r.target === target).sort((a, b) => a.files - b.files)
    const dash = isFloor(target) ? ` stroke-dasharray="6 4"` : ""
    parts.push(
      `<polyline fill="none" stroke="${color}" stroke-width="2"${dash} points="${
        points.map((r) => `${px(r.files).toFixed(1)},${y(value(r)).toFixed(1)}`).join(" ")
      }"/>`
    )
    for (const r of points) {
      parts.push(
        `<circle cx="${px(r.files).toFixed(1)}" cy="${y(value(r)).toFixed(1)}" r="4" fill="${color}"><title>${
          // The memory panel's targets already name their operation ("sqlite store").
          escape(
            `${target.endsWith(` ${r.operation}`) ? target : `${target} ${r.operation}`}, ${r.files} files: ${
              num(value(r))
            } ${unit}`
          )}</title></circle>`
      )
    }
    const last = points.at(-1)
    if (last !== undefined) {
      parts.push(text(px(last.files) + 6, y(value(last)) - 6, target, `fill="${color}" font-size="11"`))
    }
  })
  parts.push(
    text(
      x + 12,
      panelTop + plotHeight / 2,
      unit,
      `transform="rotate(-90 ${x + 12} ${panelTop + plotHeight / 2})" text-anchor="middle" fill="#555"`
    )
  )
  parts.push(text((left + right) / 2, bottom + 36, "files (log)", `text-anchor="middle" fill="#555"`))
  return parts.join("")
}

export const svg = (report: Report): string => {
  const store = report.rows.filter((r) => r.operation === "store")
  const restore = report.rows.filter((r) => r.operation === "restore")
  const codex = report.rows.filter((r) => !isFloor(r.target))
  const rss = codex.map((r) => ({ ...r, target: `${r.target} ${r.operation}` as Target }))
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    text(
      width / 2,
      24,
      "codex-archive growth: cost per file as the tree grows (small files, 1–16 KiB)",
      `text-anchor="middle" font-size="15" font-weight="bold"`
    ),
    panel(20, "Store: µs per file", "µs/file", store, (r) => r.us_per_file, true),
    panel(440, "Batch restore: µs per file", "µs/file", restore, (r) => r.us_per_file, true),
    panel(860, "Peak RSS (MiB)", "MiB", rss, (r) => r.rss_mib, false),
    "</svg>"
  ].join("\n") + "\n"
}

export const write = (report: Report, dir: string) => {
  fs.mkdirSync(dir, { recursive: true })
  const files = {
    json: path.join(dir, "growth.json"),
    markdown: path.join(dir, "growth.md"),
    svg: path.join(dir, "growth.svg")
  }
  fs.writeFileSync(files.json, JSON.stringify(report, null, 2) + "\n")
  fs.writeFileSync(files.markdown, markdown(report))
  fs.writeFileSync(files.svg, svg(report))
  return files
}
