/**
 * Input text must be UTF-8. Decoded leniently, a byte that is not becomes U+FFFD: a manifest's output `out\xff.txt` was
 * restored as `out\u{FFFD}.txt`, another file than the one asked for, and reported a success.
 */
import { isUtf8 } from "node:buffer"

/** Text whose bytes are not UTF-8; `offset` and `line` (from 1) locate the first bad byte. */
export class NotUtf8 extends Error {
  constructor(readonly offset: number, readonly line: number, readonly byte: number | undefined) {
    super(
      `not UTF-8 text: ${
        byte === undefined ? "it ends inside a character" : `byte 0x${byte.toString(16).padStart(2, "0")}`
      } at line ${line} (offset ${offset})`
    )
  }
}

/** The length of the character a byte begins, or 0 for one that begins none (a continuation byte, 0xC0, 0xF5 and up). */
const sizeOf = (b: number): number =>
  b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0

/** The offset of the first byte of `bytes` (which begin at a character, and are not UTF-8) not part of a character. */
const invalidAt = (bytes: Uint8Array): number => {
  for (let i = 0; i < bytes.length;) {
    const size = sizeOf(bytes[i]!)
    // The sequence checked whole: continuation bytes, overlong forms and surrogates are isUtf8's to judge.
    if (size === 0 || i + size > bytes.length || !isUtf8(bytes.subarray(i, i + size))) return i
    i += size
  }
  return bytes.length
}

/** The length of `bytes` without a last character cut short (a lead byte and fewer continuation bytes than it needs). */
export const wholeCharacters = (bytes: Uint8Array): number => {
  for (let i = bytes.length - 1; i >= 0 && i >= bytes.length - 3; i--) {
    const b = bytes[i]!
    // Continuation bytes are passed over back to the lead; any other byte ends the search.
    if (b >= 0x80 && b < 0xc0) continue
    return bytes.length - i < sizeOf(b) ? i : bytes.length
  }
  return bytes.length
}

/**
 * `bytes`, which begin at a character, as text; throws `NotUtf8` when they are not UTF-8, its line counted from
 * `bytes`' start and its offset from `offset` (where they begin in their file). `final` says they end the file, so that
 * a last character cut short is the end's fault (where more bytes follow, the bytes before a piece's edge are bad).
 */
export const decode = (bytes: Uint8Array, offset = 0, final = true) => {
  if (isUtf8(bytes)) return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8")
  const bad = invalidAt(bytes)
  const line = 1 + lineFeeds(bytes.subarray(0, bad))
  throw new NotUtf8(offset + bad, line, final && wholeCharacters(bytes) === bad ? undefined : bytes[bad])
}

/** How many line feeds `bytes` hold. */
export const lineFeeds = (bytes: Uint8Array): number => {
  let n = 0
  for (let i = bytes.indexOf(10); i >= 0; i = bytes.indexOf(10, i + 1)) n++
  return n
}
