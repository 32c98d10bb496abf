/**
 * What the Schemas of input records (manifest entries, results records) share: their fields as given, and a failed
 * decode as one line naming the field.
 */
import { ParseResult, Schema } from "effect"
import * as Printable from "../Printable.js"

const isObject = (value: unknown): value is { readonly [key: string]: unknown } =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/**
 * A record as an object of the `fields` it gives; one that is null, or blank (a CSV's empty cell), is not given, and
 * any other is left out. Anything but an object fails with `notObject`.
 */
export const given = (fields: ReadonlyArray<string>, notObject: string) =>
  Schema.transform(
    Schema.declare(isObject, { message: () => notObject }),
    // Not a `Schema.Record`, whose check walks every key of every record again.
    Schema.declare(isObject),
    {
      strict: true,
      decode: (record) => {
        const kept: Record<string, unknown> = {}
        for (const field of fields) {
          const value = record[field]
          if (value !== undefined && value !== null && !(typeof value === "string" && value.trim() === "")) {
            kept[field] = value
          }
        }
        return kept
      },
      encode: (record) => record
    }
  )

/** Control characters in a value shown in an error would break its one line: such values are shown as JSON. */
export const quoted = (value: string, quote = "'"): string => {
  // A hostile value may be megabytes long: the one-line error shows its start and its length.
  if (value.length > 200) return `${quoted(value.slice(0, 100), quote)}... (${Buffer.byteLength(value)} bytes)`
  return Printable.unsafe.test(value) ? Printable.escapeJson(JSON.stringify(value)) : `${quote}${value}${quote}`
}

/** The first issue: `missing FIELD`, or `FIELD: what is wrong`; a record that is no object at all says so alone. */
export const describe = (issue: ParseResult.ParseIssue): string => {
  let first: ParseResult.ArrayFormatterIssue | undefined
  try {
    first = ParseResult.ArrayFormatter.formatIssueSync(issue)[0]
  } catch (e) {
    // The parser's message shows the value as JSON, which overflows the stack on a value nested thousands deep.
    if (e instanceof RangeError) return "a value nested too deeply to show (a field must be a string)"
    throw e
  }
  if (first === undefined) return "invalid"
  const field = first.path.map(String).join(".")
  // Values are quoted by JSON in the parser's own messages; a custom message may carry one raw.
  const message = Printable.escapeLog(first.message)
  if (field === "") return message
  return first._tag === "Missing" ? `missing ${field}` : `${field}: ${message}`
}
