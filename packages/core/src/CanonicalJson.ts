/**
 * Canonical JSON: compact, keys sorted at every depth, `undefined` members left out. The database's metadata and
 * event contexts, the evidence log's lines (and so its hash chain) and the JSON logger all write it.
 */

const sorted = (_key: string, value: unknown): unknown =>
  value !== null && typeof value === "object" && !Array.isArray(value)
    ? Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    : value

export const stringify = (value: unknown): string => JSON.stringify(value, sorted)

/** Python's `json.dumps(sort_keys=True, separators=(",", ":"))`, including its ASCII escaping. */
export const stringifyAscii = (value: unknown): string =>
  stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
