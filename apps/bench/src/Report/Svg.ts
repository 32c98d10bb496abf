/**
 * The report as one hand-written SVG: single-restore latency percentiles per backend (small and large files, log
 * scale, floor beside them) and batch-restore throughput against concurrency with the floors as dashed lines.
 */
import type { Report } from "../Report.js"
import type { Figure } from "../Results.js"
import { mib, num } from "./Format.js"

export const escape = (text: string) =>
  text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

export const palette = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1"]
const percentileColors = ["#4e79a7", "#76b7b2", "#f28e2b", "#e15759"]
const floorColors: Record<string, string> = { fs: "#555555", tar: "#999999" }
const floorNames: Record<string, string> = { fs: "Node fs copy (floor)", tar: "tar -xf (floor)" }

const width = 1260
const height = 450
const panelWidth = 380
const panelTop = 110
const plotHeight = 270

export const text = (x: number, y: number, content: string, attrs = "") =>
  `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}"${attrs ? " " + attrs : ""}>${escape(content)}</text>`

/** Log-scale mapping of [lo, hi] onto [bottom, top] with decade ticks. */
export const logScale = (values: ReadonlyArray<number>, bottom: number, top: number) => {
  const finite = values.filter((v) => Number.isFinite(v) && v > 0)
  const lo = Math.pow(10, Math.floor(Math.log10(Math.min(...finite, 1))))
  const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...finite, lo * 10))))
  const y = (v: number) =>
    bottom - ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (bottom - top)
  const ticks: Array<number> = []
  for (let t = lo; t <= hi * 1.0001; t *= 10) ticks.push(t)
  return { y, ticks }
}

export const linearScale = (values: ReadonlyArray<number>, bottom: number, top: number) => {
  const max = Math.max(...values.filter(Number.isFinite), 1)
  const magnitude = Math.pow(10, Math.floor(Math.log10(max)))
  const step = [0.1, 0.2, 0.5, 1, 2, 5, 10].map((m) => m * magnitude).find((s) => max / s <= 6)!
  const hi = Math.ceil(max / step) * step
  const ticks: Array<number> = []
  for (let t = 0; t <= hi + step / 2; t += step) ticks.push(t)
  return { y: (v: number) => bottom - (v / hi) * (bottom - top), ticks }
}

export const axis = (x0: number, x1: number, bottom: number, ticks: ReadonlyArray<number>, y: (v: number) => number) =>
  ticks.map((t) =>
    `<line x1="${x0}" x2="${x1}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="#e5e5e5"/>` +
    text(x0 - 6, y(t) + 4, Number.isInteger(t) ? t.toLocaleString("en-US") : num(t), `text-anchor="end"`)
  ).join("") + `<line x1="${x0}" x2="${x1}" y1="${bottom}" y2="${bottom}" stroke="#888"/>`

const latencyPanel = (x: number, title: string, figures: ReadonlyArray<Figure>) => {
  const parts = [text(x + panelWidth / 2, panelTop - 30, title, `text-anchor="middle" font-weight="bold"`)]
  const keys = ["p50_ms", "p95_ms", "p99_ms", "max_ms"] as const
  if (figures.length === 0) {
    return parts.join("") +
      text(x + panelWidth / 2, panelTop + plotHeight / 2, "not measured", `text-anchor="middle" fill="#888"`)
  }
  const bottom = panelTop + plotHeight
  const left = x + 50
  const { ticks, y } = logScale(
    figures.flatMap((f) => keys.map((k) => f.values[k]?.median ?? Number.NaN)),
    bottom,
    panelTop
  )
  parts.push(axis(left, x + panelWidth, bottom, ticks, y))
  const group = (x + panelWidth - left) / figures.length
  const bar = Math.min(18, (group - 12) / keys.length)
  figures.forEach((f, i) => {
    const gx = left + i * group + (group - bar * keys.length) / 2
    keys.forEach((k, j) => {
      const s = f.values[k]
      if (s === undefined || !Number.isFinite(s.median)) return
      const top = y(s.median)
      parts.push(
        `<rect x="${(gx + j * bar).toFixed(1)}" y="${top.toFixed(1)}" width="${(bar - 2).toFixed(1)}" height="${
          (bottom - top).toFixed(1)
        }" fill="${percentileColors[j]}"><title>${
          escape(`${f.target} ${k.replace("_ms", "")}: ${num(s.median)} ms (${num(s.min)}–${num(s.max)})`)
        }</title></rect>`
      )
      if (s.n > 1) {
        const cx = gx + j * bar + (bar - 2) / 2
        parts.push(
          `<line x1="${cx.toFixed(1)}" x2="${cx.toFixed(1)}" y1="${y(s.min).toFixed(1)}" y2="${
            y(s.max).toFixed(1)
          }" stroke="#222" stroke-width="1"/>`
        )
      }
    })
    parts.push(
      text(
        left + i * group + group / 2,
        bottom + 16,
        f.target === "fs" ? "fs (floor)" : f.target,
        `text-anchor="middle"`
      )
    )
  })
  parts.push(
    text(
      x + 12,
      panelTop + plotHeight / 2,
      "ms (log)",
      `transform="rotate(-90 ${x + 12} ${panelTop + plotHeight / 2})" text-anchor="middle" fill="#555"`
    )
  )
  keys.forEach((k, j) => {
    const lx = left + j * 70
    parts.push(
      `<rect x="${lx}" y="${bottom + 30}" width="10" height="10" fill="${percentileColors[j]}"/>` +
        text(lx + 14, bottom + 39, k.replace("_ms", ""))
    )
  })
  return parts.join("")
}

const throughputPanel = (x: number, report: Report, backends: ReadonlyArray<string>) => {
  const levels = report.settings.concurrency
  const parts = [
    text(
      x + panelWidth / 2,
      panelTop - 30,
      "Batch restore throughput (MiB/s) vs concurrency",
      `text-anchor="middle" font-weight="bold"`
    )
  ]
  const at = (target: string, c: number) =>
    report.figures.find((f) => f.scenario === `batch-c${c}` && f.target === target)?.values["mib_s"]
  const floors = ["fs", "tar"].filter((t) => levels.some((c) => at(t, c) !== undefined))
  const floorValue = (t: string) => {
    const medians = levels.map((c) => at(t, c)?.median ?? Number.NaN).filter(Number.isFinite).sort((a, b) => a - b)
    return medians[Math.floor(medians.length / 2)] ?? Number.NaN
  }
  const measured = backends.filter((b) => levels.some((c) => at(b, c) !== undefined))
  if (measured.length === 0 && floors.length === 0) {
    return parts.join("") +
      text(x + panelWidth / 2, panelTop + plotHeight / 2, "not measured", `text-anchor="middle" fill="#888"`)
  }
  const bottom = panelTop + plotHeight
  const left = x + 50
  const right = x + panelWidth - 10
  const { ticks, y } = linearScale(
    [...measured.flatMap((b) => levels.map((c) => at(b, c)?.max ?? Number.NaN)), ...floors.map(floorValue)],
    bottom,
    panelTop
  )
  parts.push(axis(left, right, bottom, ticks, y))
  const px = (i: number) =>
    left + 20 + (levels.length === 1 ? (right - left - 40) / 2 : (i * (right - left - 40)) / (levels.length - 1))
  levels.forEach((c, i) => parts.push(text(px(i), bottom + 16, `c=${c}`, `text-anchor="middle"`)))
  for (const t of floors) {
    const v = floorValue(t)
    parts.push(
      `<line x1="${left}" x2="${right}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="${
        floorColors[t]
      }" stroke-dasharray="6 4"/>`
    )
    parts.push(
      text(
        right - 4,
        y(v) - 4,
        `${floorNames[t]}: ${num(v)}`,
        `text-anchor="end" fill="${floorColors[t]}" font-size="11"`
      )
    )
  }
  measured.forEach((b, bi) => {
    const color = palette[bi % palette.length]
    // Backends sit a few pixels apart at each level so their whiskers do not hide each other.
    const offset = (bi - (measured.length - 1) / 2) * 5
    const points = levels.map((c, i) => [px(i) + offset, at(b, c)] as const).filter(([, s]) =>
      s !== undefined && Number.isFinite(s.median)
    )
    parts.push(
      `<polyline fill="none" stroke="${color}" stroke-width="2" points="${
        points.map(([px, s]) => `${px.toFixed(1)},${y(s!.median).toFixed(1)}`).join(" ")
      }"/>`
    )
    for (const [cx, s] of points) {
      parts.push(
        `<line x1="${cx.toFixed(1)}" x2="${cx.toFixed(1)}" y1="${y(s!.min).toFixed(1)}" y2="${
          y(s!.max).toFixed(1)
        }" stroke="${color}"/>`
      )
      parts.push(
        `<circle cx="${cx.toFixed(1)}" cy="${y(s!.median).toFixed(1)}" r="4" fill="${color}"><title>${
          escape(`${b}: ${num(s!.median)} MiB/s (${num(s!.min)}–${num(s!.max)})`)
        }</title></circle>`
      )
    }
  })
  parts.push(
    text(
      x + 12,
      panelTop + plotHeight / 2,
      "MiB/s",
      `transform="rotate(-90 ${x + 12} ${panelTop + plotHeight / 2})" text-anchor="middle" fill="#555"`
    )
  )
  measured.forEach((b, bi) => {
    const lx = left + bi * 90
    parts.push(
      `<rect x="${lx}" y="${bottom + 30}" width="10" height="10" fill="${palette[bi % palette.length]}"/>` +
        text(lx + 14, bottom + 39, b)
    )
  })
  return parts.join("")
}

export const render = (report: Report): string => {
  const backends = report.settings.backends
  const pick = (scenario: string) => {
    const figs = report.figures.filter((f) => f.scenario === scenario)
    return [...backends.flatMap((b) => figs.filter((f) => f.target === b)), ...figs.filter((f) => f.target === "fs")]
  }
  const notMeasured = backends.filter((b) => !report.figures.some((f) => f.target === b))
  const subtitle =
    `${num(report.corpus.files)} files, ${
      mib(report.corpus.bytes)
    }, seed ${report.seed}; medians of ${report.settings.runs} run(s), whiskers min–max; ` +
    `${report.machine.cpus} × ${report.machine.cpu_model}, node ${report.versions["node"] ?? "?"}`
  const body = [
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    text(20, 26, `codex-archive bench: ${backends.join(", ")}`, `font-size="16" font-weight="bold"`),
    text(20, 44, subtitle, `fill="#555" font-size="11"`),
    latencyPanel(10, "Single restore latency, small files (ms)", pick("restore-small")),
    latencyPanel(10 + panelWidth + 40, "Single restore latency, large files (ms)", pick("restore-large")),
    throughputPanel(10 + 2 * (panelWidth + 40), report, backends),
    notMeasured.length > 0
      ? text(20, height - 10, `not measured: ${notMeasured.join(", ")}`, `fill="#a33" font-size="11"`)
      : ""
  ]
  return `<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="12">\n${
    body.join("\n")
  }\n</svg>\n`
}
