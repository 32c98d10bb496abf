/** A record's failed Schema decode as one line naming the field: what manifest entries and results records report. */
import { ParseResult } from "effect"

/** Control characters in a value shown in an error would break its one line: such values are shown as JSON. */
export const quoted = (value: string, quote = "'"): string =>
  /[\u0000-\u001f\u007f]/.test(value) ? JSON.stringify(value) : `${quote}${value}${quote}`

/** The first issue: `missing FIELD`, or `FIELD: what is wrong`; a record that is no object at all says so alone. */
export const describe = (issue: ParseResult.ParseIssue): string => {
  const [first] = ParseResult.ArrayFormatter.formatIssueSync(issue)
  if (first === undefined) return "invalid"
  const field = first.path.map(String).join(".")
  // Values are quoted by JSON in the parser's own messages; a custom message may carry one raw.
  const message = first.message.replace(/[\u0000-\u001f\u007f]/g, (c) => JSON.stringify(c).slice(1, -1))
  if (field === "") return message
  return first._tag === "Missing" ? `missing ${field}` : `${field}: ${message}`
}
