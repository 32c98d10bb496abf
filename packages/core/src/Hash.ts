/** SHA-256 content addressing: lowercase hex of the uncompressed bytes, as the original tool writes it. */
import { Data } from "effect"
import { createHash, type Hash, hash } from "node:crypto"
import * as fs from "node:fs"
import type { Sha256 } from "./Ids.js"

/** Restored content that does not hash to the SHA-256 the archive recorded for it. */
export class IntegrityError extends Data.TaggedError("IntegrityError")<{
  readonly tombstone: string
  readonly expected: string
  readonly actual: string
}> {
  override get message() {
    return `payload of tombstone ${this.tombstone} is corrupt: sha256 ${this.actual} does not match the recorded ${this.expected}`
  }
}

/** One-shot `crypto.hash` (Node 20.12+): half the cost of a `createHash` object on a small input (an evidence line). */
export const sha256 = (bytes: string | Uint8Array): Sha256 => hash("sha256", bytes, "hex") as Sha256

/** An incremental hasher for content read or restored in chunks. */
export const incremental = (): { readonly update: (bytes: Uint8Array) => void; readonly digest: () => Sha256 } => {
  const hash: Hash = createHash("sha256")
  return { update: (bytes) => void hash.update(bytes), digest: () => hash.digest("hex") as Sha256 }
}

/** SHA-256 of a file, read through one buffer of at most 1 MiB (bounded memory, one allocation per file). */
export const file = (path: string): Sha256 => {
  const hash = createHash("sha256")
  // Callers hash a file they found regular: a FIFO swapped in since must not block the open (its read then fails), and
  // a link swapped in (to /dev/zero, read without end) is not followed.
  const fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOFOLLOW)
  try {
    const st = fs.fstatSync(fd)
    if (!st.isFile()) throw new Error(`${path} is not a regular file`)
    const buf = Buffer.allocUnsafe(Math.max(1, Math.min(1024 * 1024, st.size)))
    let n: number
    while ((n = fs.readSync(fd, buf, 0, buf.length, null)) > 0) hash.update(buf.subarray(0, n))
  } finally {
    fs.closeSync(fd)
  }
  return hash.digest("hex") as Sha256
}

/** cyrb53: a fast 53-bit hash of a string, for compact sets of paths and keys (not for content). */
export const hash53 = (text: string, seed = 0): number => {
  let h1 = 0xdeadbeef ^ seed
  let h2 = 0x41c6ce57 ^ seed
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    h1 = Math.imul(h1 ^ c, 2654435761)
    h2 = Math.imul(h2 ^ c, 1597334677)
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909)
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909)
  return 4294967296 * (2097151 & h2) + (h1 >>> 0)
}
