/**
 * Canonical JSON: compact, keys sorted at every depth, `undefined` members left out. The database's metadata and
 * event contexts, the evidence log's lines (and so its hash chain) and the JSON logger all write it.
 *
 * What it writes is defined as `JSON.stringify` of a copy of every object with its entries sorted (so integer-like
 * keys come first, in numeric order, as JavaScript orders them in any object). Plain objects, arrays and primitives
 * are written here directly; anything else (a `Date`, a boxed string, an object with `toJSON`) goes through
 * `JSON.stringify` with a sorting replacer. A replacer costs V8 its fast path: every evidence line went through it,
 * 15–30 µs a line, about a tenth of a 10,000-file batch restore's main thread.
 */

const byKey = ([a]: [string, unknown], [b]: [string, unknown]) => (a < b ? -1 : a > b ? 1 : 0)

const sorted = (_key: string, value: unknown): unknown =>
  value !== null && typeof value === "object" && !Array.isArray(value)
    ? Object.fromEntries(Object.entries(value).sort(byKey))
    : value

/** An array index (at most 2^32 − 2): the keys JavaScript lists first, in numeric order, whatever their insertion. */
const isIndex = (key: string): boolean => {
  const c = key.charCodeAt(0)
  return c >= 48 && c <= 57 && /^(?:0|[1-9][0-9]*)$/.test(key) && Number(key) <= 4294967294
}

/** An object written here: an array or a plain object, without `toJSON`. */
const isPlain = (value: object): boolean => {
  if (typeof (value as { toJSON?: unknown }).toJSON === "function") return false
  if (Array.isArray(value)) return true
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

// Keys quoted, with their colon: quoting every key again cost as much as the rest of a record. Records reuse a few
// keys; past 1,024 (arbitrary metadata keys) a key is quoted each time.
const keyTexts = new Map<string, string>()
const keyText = (key: string): string => {
  let text = keyTexts.get(key)
  if (text === undefined) {
    text = JSON.stringify(key) + ":"
    if (keyTexts.size < 1024) keyTexts.set(key, text)
  }
  return text
}

/** The text of `value`, or `undefined` where `JSON.stringify` leaves a member out (undefined, a function, a symbol). */
const write = (value: unknown): string | undefined => {
  switch (typeof value) {
    case "string":
      return JSON.stringify(value)
    case "number":
      return Number.isFinite(value) ? String(value) : "null"
    case "boolean":
      return value ? "true" : "false"
    case "object": {
      if (value === null) return "null"
      if (!isPlain(value)) return JSON.stringify(value, sorted) as string | undefined
      if (Array.isArray(value)) {
        let out = "["
        for (let i = 0; i < value.length; i++) out += (i === 0 ? "" : ",") + (write(value[i]) ?? "null")
        return out + "]"
      }
      const keys = Object.keys(value)
      let first = 0
      while (first < keys.length && isIndex(keys[first]!)) first++
      const named = keys.slice(first).sort()
      let out = "{"
      for (const key of first === 0 ? named : keys.slice(0, first).concat(named)) {
        const text = write((value as Record<string, unknown>)[key])
        if (text !== undefined) out += (out.length === 1 ? "" : ",") + keyText(key) + text
      }
      return out + "}"
    }
    case "bigint":
      return JSON.stringify(value) // throws, as JSON.stringify does for any BigInt
    default:
      return undefined
  }
}

export const stringify = (value: unknown): string => write(value) as string

const nonAscii = /[\u007f-\uffff]/g

/** Python's `json.dumps(sort_keys=True, separators=(",", ":"))`, including its ASCII escaping. */
export const stringifyAscii = (value: unknown): string =>
  stringify(value).replace(nonAscii, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
