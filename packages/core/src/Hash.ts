/** SHA-256 content addressing: lowercase hex of the uncompressed bytes, as the original tool writes it. */
import { createHash, type Hash } from "node:crypto"
import * as fs from "node:fs"
import type { Sha256 } from "./Ids.js"

export const sha256 = (bytes: Uint8Array): Sha256 => createHash("sha256").update(bytes).digest("hex") as Sha256

/** An incremental hasher for content read or restored in chunks. */
export const incremental = (): { readonly update: (bytes: Uint8Array) => void; readonly digest: () => Sha256 } => {
  const hash: Hash = createHash("sha256")
  return { update: (bytes) => void hash.update(bytes), digest: () => hash.digest("hex") as Sha256 }
}

/** SHA-256 of a file, read through one buffer of at most 1 MiB (bounded memory, one allocation per file). */
export const file = (path: string): Sha256 => {
  const hash = createHash("sha256")
  const fd = fs.openSync(path, "r")
  try {
    const buf = Buffer.allocUnsafe(Math.max(1, Math.min(1024 * 1024, fs.fstatSync(fd).size)))
    let n: number
    while ((n = fs.readSync(fd, buf, 0, buf.length, null)) > 0) hash.update(buf.subarray(0, n))
  } finally {
    fs.closeSync(fd)
  }
  return hash.digest("hex") as Sha256
}
