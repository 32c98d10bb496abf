/**
 * Canonical JSON: compact, keys sorted at every depth, `undefined` members left out. The database's metadata and
 * event contexts, the evidence log's lines (and so its hash chain) and the JSON logger all write it.
 */

const byKey = ([a]: [string, unknown], [b]: [string, unknown]) => (a < b ? -1 : a > b ? 1 : 0)

/** Whether an object's own keys already come in sorted order (most records are built that way). */
const inOrder = (value: object): boolean => {
  let last: string | undefined
  for (const key in value) {
    if (!Object.hasOwn(value, key)) return false
    if (last !== undefined && !(last < key)) return false
    last = key
  }
  return true
}

// An object already in order is written as it is: copying every record (entries, sort, a new object) was a tenth of
// what a store or a batch restore allocated on its main thread.
const sorted = (_key: string, value: unknown): unknown =>
  value !== null && typeof value === "object" && !Array.isArray(value) && !inOrder(value)
    ? Object.fromEntries(Object.entries(value).sort(byKey))
    : value

export const stringify = (value: unknown): string => JSON.stringify(value, sorted)

/** Python's `json.dumps(sort_keys=True, separators=(",", ":"))`, including its ASCII escaping. */
export const stringifyAscii = (value: unknown): string =>
  stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
