/** Database rows as the drivers return them, coerced to what the port promises: one place for every driver's types. */
import { codecOfCompression, type Layout, legalHoldValue } from "../ArchiveStore.js"
import * as Timestamp from "../Timestamp.js"

export type Row = Record<string, unknown>

export const toBool = (v: unknown): boolean => v === true || v === 1 || v === "1" || v === "t" || v === "true"
export const toNum = (v: unknown): number => (typeof v === "bigint" ? Number(v) : Number(v ?? 0))
export const toBytes = (v: unknown): Uint8Array => (v instanceof Uint8Array ? v : Buffer.from(v as ArrayBuffer))

/** Dates come back as `Date` (pg, mysql) or text (sqlite, legacy rows); all leave here as `YYYY-MM-DDTHH:MM:SSZ`. */
export const toTimestamp = (v: unknown): string | null => {
  if (v === null || v === undefined) return null
  if (v instanceof Date) return Timestamp.format(v.getTime())
  const s = String(v)
  return /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/.test(s) ? `${s.replace(" ", "T")}Z` : s
}

/** Compact JSON with sorted keys, as the original stores metadata and event contexts. */
export const canonicalJson = (value: unknown): string =>
  JSON.stringify(
    value,
    (_, v) =>
      v && typeof v === "object" && !Array.isArray(v)
        ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
        : v
  )

export const modeOf = (metadata: unknown): number | null => {
  const mode = (metadata as { file_mode?: unknown } | null)?.file_mode
  return typeof mode === "string" && /^0?[0-7]{3,4}$/.test(mode) ? parseInt(mode, 8) : null
}

export const parseJson = (v: unknown): unknown => {
  if (typeof v !== "string") return v ?? {}
  try {
    return JSON.parse(v)
  } catch {
    return v
  }
}

/** `legal_hold` from metadata, coerced as the original does: bool/number truthiness or 1/true/yes/on. */
export const legalHoldOf = (v: unknown): boolean => legalHoldValue(v) ?? false

/**
 * Stored bytes of the artifact aliased `t`, as SQL: its chunks when chunked (its `blob_bytes` is only a marker).
 */
export const compressedSizeSql = (t: string) =>
  `CASE WHEN ${t}.storage_driver = 'chunked' THEN COALESCE((SELECT SUM(LENGTH(c.blob_bytes)) FROM artifact_chunk c
        WHERE c.artifact_id = ${t}.id), 0) ELSE COALESCE(LENGTH(${t}.blob_bytes), 0) END AS compressed_size`

/** A chunked artifact keeps a marker in `blob_bytes` (so the original never calls it purged): the driver decides. */
export const layoutOf = (row: Row): Layout =>
  row.storage_driver === "chunked" ? "chunked" : row.has_blob !== null && toBool(row.has_blob) ? "inline" : "purged"

export const codecOf = (
  v: unknown
): string | null => (v === null || v === undefined ? null : codecOfCompression(String(v)))
