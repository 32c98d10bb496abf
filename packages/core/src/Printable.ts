/**
 * What a terminal or a log line must never receive raw from text it did not write (archive rows, file names,
 * manifests, driver messages), and how each such character is shown instead.
 */

/**
 * C0 and C1 controls, DEL, and the Unicode line and paragraph separators: each can start a sequence or end a line.
 * And the bidirectional controls (marks, embeddings, overrides, isolates): U+202E made `txt.exe` read as `exe.txt`.
 */
export const unsafe = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/

const unsafeAll = new RegExp(unsafe.source, "g")

/** `\uXXXX`, which JSON and JavaScript read back as the character itself. */
const hex = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`

/** JSON's own short escapes: how a log line has always shown a line break or a tab. */
const short: Readonly<Record<string, string>> = { "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r" }

/** Every unsafe character as `\uXXXX` (stdout and error lines: `a\u000ab`, `\u001b[2J`). */
export const escape = (text: string): string => text.replace(unsafeAll, hex)

/** As `escape`, with JSON's short forms for the five characters that have one (log lines: `a\nb`, `\u001b[2J`). */
export const escapeLog = (text: string): string => text.replace(unsafeAll, (c) => short[c] ?? hex(c))

/**
 * JSON text with the unsafe characters JSON.stringify leaves raw (DEL, C1, U+2028/U+2029) escaped; the same JSON
 * value, its layout's line breaks kept (JSON.stringify has escaped every C0 control inside a string already).
 */
export const escapeJson = (json: string): string => json.replace(unsafeAll, (c) => (c < " " ? c : hex(c)))
