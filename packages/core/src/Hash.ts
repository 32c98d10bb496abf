/** SHA-256 content addressing: lowercase hex of the uncompressed bytes, as the original tool writes it. */
import { createHash, type Hash } from "node:crypto"

export const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex")

/** An incremental hasher for content read or restored in chunks. */
export const incremental = (): { readonly update: (bytes: Uint8Array) => void; readonly digest: () => string } => {
  const hash: Hash = createHash("sha256")
  return { update: (bytes) => void hash.update(bytes), digest: () => hash.digest("hex") }
}

export const isSha256 = (value: string): boolean => /^[0-9a-f]{64}$/.test(value)
