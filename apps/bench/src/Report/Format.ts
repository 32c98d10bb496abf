/** Number formatting shared by the Markdown and SVG writers: three significant figures, thousands separated. */
import type { Summary } from "../Stats.js"

export const num = (x: number): string => {
  if (!Number.isFinite(x)) return "–"
  const abs = Math.abs(x)
  if (abs >= 1000) return Math.round(x).toLocaleString("en-US")
  if (abs >= 100) return x.toFixed(0)
  if (abs >= 10) return x.toFixed(1)
  if (abs >= 1) return x.toFixed(2)
  return x.toPrecision(2)
}

/** `median (min–max)`, or just the median when there was one run. */
export const spread = (s: Summary | undefined): string => {
  if (s === undefined || s.n === 0) return "–"
  return s.n === 1 || s.min === s.max ? num(s.median) : `${num(s.median)} (${num(s.min)}–${num(s.max)})`
}

export const ratio = (s: Summary | undefined): string => {
  if (s === undefined || s.n === 0) return "–"
  return s.n === 1 || s.min === s.max ? `${num(s.median)}×` : `${num(s.median)}× (${num(s.min)}–${num(s.max)})`
}

export const mib = (bytes: number) => `${num(bytes / 1024 / 1024)} MiB`
