/**
 * The archive store port: everything the archiver and restorer need from a database, as one `Context.Tag` with a
 * layer per backend package. Its errors are the core's own; driver errors never cross this boundary.
 */
import { Context, Data, type Effect, type Stream } from "effect"
import type { CodecName } from "./Codec.js"
import type { BackendName } from "./Config.js"
import type { Guarded } from "./Guarded.js"

export type Kind = "code" | "doc" | "asset"
export const kinds: ReadonlyArray<Kind> = ["code", "doc", "asset"]
export type Reason = "dead" | "pruned" | "legacy" | "replaced"
export const reasons: ReadonlyArray<Reason> = ["dead", "pruned", "legacy", "replaced"]

/**
 * Content up to this size is one compressed `blob_bytes` value, the original tool's own layout, so it can restore it
 * (config `store.inline_limit`). Larger content is chunked; so is everything above one chunk on MariaDB.
 */
export const defaultInlineLimit = 8 * 1024 * 1024

// Chunking owns these; re-exported where they were first found.
export { chunkedCompression, chunkedMarker, chunkSize, codecOfCompression } from "./Chunking.js"

export interface ItemInput {
  readonly repo: string
  readonly path: string
  readonly commitSha: string
  readonly kind: Kind
  readonly reason: Reason
  readonly language: string | null
  readonly mimeType: string
  readonly archivedBy: string
  readonly tags: ReadonlyArray<string>
  /** `--metadata key=value` pairs; merged over the built-in metadata, as the original does. */
  readonly extraMetadata: Readonly<Record<string, unknown>>
  /** The ARCHIVE event context (`commit`, `repo`, `path`, ...). */
  readonly context: Readonly<Record<string, unknown>>
}

export interface ArchiveEntry {
  readonly sha256: string
  readonly sizeBytes: number
  readonly codec: CodecName
  readonly item: ItemInput
  /**
   * The compressed content, read inside the store's transaction and only when the artifact must be written, so a
   * duplicate is never read twice.
   */
  readonly payload: Payload
}

/**
 * Content up to the inline limit is one compressed value (the original `blob_bytes` layout); larger content is a
 * stream of compressed chunks, one per `chunkSize` piece of raw content, so memory stays bounded by the chunk size.
 */
export type Payload =
  | { readonly _tag: "Whole"; readonly read: Effect.Effect<Uint8Array, PayloadSourceError> }
  | { readonly _tag: "Chunks"; readonly stream: Stream.Stream<Uint8Array, PayloadSourceError> }

export interface Archived {
  readonly tombstone: string
  readonly itemId: string
  readonly artifactId: string
  readonly sha256: string
  readonly sizeBytes: number
  readonly compressedSize: number
  readonly archivedAt: string
  readonly deduplicated: boolean
  readonly repo: string
  readonly path: string
}

/** How an artifact's bytes are laid out: inline `blob_bytes`, `artifact_chunk` rows, or gone (purged). */
export type Layout = "inline" | "chunked" | "purged"

export interface Located {
  readonly tombstone: string
  readonly itemId: string
  readonly repo: string
  readonly path: string
  readonly artifactId: string
  readonly sha256: string
  readonly sizeBytes: number
  readonly compressedSize: number
  readonly codec: string | null
  readonly layout: Layout
  /** Permission bits recorded at store time (`metadata.file_mode`), if any. */
  readonly mode: number | null
  /**
   * The SHA-256 the item's own metadata records (`recordedSha256`), if any: its artifact must hold that content, or
   * the item points at someone else's (`RestorePlan.mismatch`).
   */
  readonly recordedSha256?: string | undefined
}

/**
 * The SHA-256 an item's metadata records (`metadata.sha256`, spec §1.3). Items of the original tool may have none, or
 * a user's `--metadata sha256=...` in its place (the original lets extra keys override it): only a digest counts.
 */
export const recordedSha256 = (metadata: unknown): string | undefined => {
  const sha256 = (metadata as { sha256?: unknown } | null)?.sha256
  // Trimmed, as the stub's and manifest's digests are: blanks around it made the check pass over a repointed item.
  const digest = typeof sha256 === "string" ? sha256.trim() : ""
  return /^[0-9a-fA-F]{64}$/.test(digest) ? digest.toLowerCase() : undefined
}

/**
 * How another thread of this process can read payloads itself: an embedded database file, the driver that opens it
 * and the two queries. A batch restore hands it to its worker threads, so content never passes through the thread
 * that talks to the database for everything else.
 */
export interface DirectReads {
  /** Module path of the driver (`better-sqlite3`). */
  readonly driver: string
  readonly file: string
  /** One parameter, an artifact id: its inline `blob_bytes`, or no row / null when there is none. */
  readonly inline: string
  /** One parameter, an artifact id: its chunks' `blob_bytes`, in order. */
  readonly chunks: string
}

export interface ListedItem {
  readonly id: string
  readonly repo: string
  readonly path: string
  readonly commit_sha: string
  readonly reason: string
  readonly archived_by: string
  readonly archived_at: string
  readonly tombstone_id: string
}

export interface EventRow {
  readonly action: string
  readonly actor: string
  readonly context: unknown
  readonly created_at: string
}

export interface ItemDetail extends ListedItem {
  readonly language: string | null
  readonly kind: string
  readonly artifact_id: string
  readonly metadata: unknown
  readonly legal_hold: boolean
  readonly delete_after: string | null
  readonly restored_at: string | null
  readonly tags: ReadonlyArray<string>
  readonly artifact: {
    readonly content_sha256: string
    readonly size_bytes: number
    readonly compressed_size: number
    readonly compression: string | null
    readonly mime_type: string
    readonly storage_driver: string
    readonly object_url: string | null
    readonly layout: Layout
  }
  readonly events: ReadonlyArray<EventRow>
}

export interface ListFilter {
  readonly repo?: string | undefined
  readonly since?: string | undefined
  readonly limit: number
}

export interface RestoreRecord {
  readonly itemId: string
  readonly actor: string
  readonly at: string
}

export interface PurgeRequest {
  readonly tombstone: string
  readonly primary: string
  readonly secondary: string
  readonly reason: string
  readonly apply: boolean
}

export interface PurgeOutcome {
  readonly blobScrubbed: boolean
  readonly refCount: number
}

/** `artifact_chunk` rows whose artifact is gone or no longer chunked (left by another tool's purge or re-store). */
export interface OrphanChunks {
  readonly rows: number
  readonly bytes: number
  readonly artifacts: ReadonlyArray<string>
}

export interface ArtifactSummary {
  readonly artifactId: string
  readonly sha256: string
  readonly sizeBytes: number
  /** Stored bytes (all its chunks when chunked): more than any encoding of `sizeBytes` is corrupt, and not read. */
  readonly compressedSize: number
  readonly codec: string | null
  readonly layout: Layout
  /** A purge was approved for one of its items: a `purged` layout without it is a missing payload, not a purge. */
  readonly purgeRecorded?: boolean
  readonly tombstones: ReadonlyArray<string>
  /** What its items' metadata records of their content (`recordedSha256`), for those that record it. */
  readonly itemDigests?: ReadonlyArray<{ readonly tombstone: string; readonly sha256: string }> | undefined
  /**
   * Why its row is not what the schema promises (a size of -1, a bad digest): a problem to list, never read. One such
   * row stopped a whole `verify` before; the rest are still checked.
   */
  readonly malformed?: string | undefined
  /** Where the next page of `artifactPage` starts after this artifact (its digest, or SQLite's rowid). */
  readonly pageKey?: string | undefined
}

/** Which store an archive is in: a SQL backend, or the test kit's in-memory one. */
export type StoreBackend = BackendName | "memory"

// ---- errors -------------------------------------------------------------------------------------------------------

export class TombstoneNotFound extends Data.TaggedError("TombstoneNotFound")<{ readonly tombstone: string }> {
  override get message() {
    return `unknown tombstone ${this.tombstone}: no such item in the archive`
  }
}

export class PayloadPurged
  extends Data.TaggedError("PayloadPurged")<{ readonly tombstone: string; readonly sha256: string }>
{
  override get message() {
    return `payload of tombstone ${this.tombstone} (sha256 ${this.sha256}) has been purged; bytes unavailable`
  }
}

/** A database failure, already redacted. `transient` tells the retry policy whether another try can help. */
export class StoreError extends Data.TaggedError("StoreError")<{
  readonly operation: string
  readonly backend: StoreBackend
  readonly detail: string
  readonly transient: boolean
  /**
   * The archive holds a row that is not what its schema promises (a payload that is not bytes, a chunk missing): the
   * database answered, so `verify` lists it as a problem and goes on.
   */
  readonly malformedRow?: boolean | undefined
}> {
  override get message() {
    return `${this.backend} archive: ${this.operation} failed: ${this.detail}`
  }
}

/** The configured database is missing or is not a codex archive. */
export class NotAnArchive
  extends Data.TaggedError("NotAnArchive")<{ readonly location: string; readonly detail: string }>
{
  override get message() {
    return `${this.location}: ${this.detail}`
  }
  /** Never worth another try; said, so that no word of its location (`?connectTimeout=`) reads as a passing fault. */
  get transient(): boolean {
    return false
  }
}

export class LegalHold extends Data.TaggedError("LegalHold")<{
  readonly tombstone: string
  /** Why the metadata cannot rule a hold out (unreadable, a repeated or respelled key...): the purge fails closed. */
  readonly doubt?: string | undefined
}> {
  override get message() {
    return this.doubt === undefined
      ? `tombstone ${this.tombstone} is under legal hold and cannot be purged`
      : `tombstone ${this.tombstone}: ${this.doubt}; refusing to purge an item that may be under legal hold`
  }
}

/**
 * A `legal_hold` value read as the original does (bool, number truthiness, or a yes/no word, case-insensitive and
 * trimmed); `undefined` when it is none of these, which store refuses and purge treats as held.
 */
export const legalHoldValue = (v: unknown): boolean | undefined => {
  if (typeof v === "boolean") return v
  if (typeof v === "number") return v !== 0
  if (typeof v !== "string") return undefined
  const word = v.trim().toLowerCase()
  if (["1", "true", "yes", "on"].includes(word)) return true
  return ["0", "false", "no", "off"].includes(word) ? false : undefined
}

/**
 * Whether a metadata key names the legal hold, however written: letter case, width (NFKC), and any punctuation, space
 * or invisible character between its letters (`Legal_Hold`, `legal-hold`, `legal.hold`, `legalHold`, fullwidth).
 */
const isHoldKey = (key: string): boolean =>
  key.normalize("NFKC").toLowerCase().replace(/[^\p{L}\p{N}]/gu, "") === "legalhold"

/** How many objects, arrays and JSON texts deep the walk goes; deeper fails closed. */
const maxHoldDepth = 64

/**
 * The object keys of JSON `text` at its top level, decoded (`"legal\u005fhold"` is `legal_hold`), in order and with
 * repeats, which `JSON.parse` keeps only the last of. `text` is known to parse.
 */
const topLevelKeys = (text: string): Array<string> => {
  const keys: Array<string> = []
  let depth = 0
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (c === "{" || c === "[") depth++
    else if (c === "}" || c === "]") depth--
    else if (c === "\"") {
      let end = i + 1
      while (text[end] !== "\"") end += text[end] === "\\" ? 2 : 1
      let next = end + 1
      while (/\s/.test(text[next] ?? "")) next++
      if (depth === 1 && text[next] === ":") keys.push(JSON.parse(text.slice(i, end + 1)))
      i = end
    }
  }
  return keys
}

/**
 * Why metadata as the database holds it (JSON text or bytes, or what a driver parsed it to) cannot rule a legal hold
 * out: `"held"` when its top-level `legal_hold` plainly says held, a sentence when it is unreadable or not an object,
 * gives a hold key twice, or holds, at any depth (nested objects, arrays, text that is itself JSON), a hold key
 * spelled another way or with a value that is not plainly false; `undefined` when no hold can be in it. The original
 * writes `"legal_hold": true` (and `delete_after`) into sorted, compact metadata.
 */
const metadataDoubt = (raw: unknown): string | undefined => {
  let metadata: unknown = raw ?? {}
  if (metadata instanceof Uint8Array) {
    try {
      metadata = new TextDecoder("utf-8", { fatal: true }).decode(metadata)
    } catch {
      return "its metadata is not readable text"
    }
  }
  if (typeof metadata === "string") {
    const text = metadata
    try {
      metadata = JSON.parse(text)
    } catch {
      return "its metadata is not readable JSON"
    }
    if (metadata !== null && typeof metadata === "object" && !Array.isArray(metadata)) {
      const held = topLevelKeys(text).filter(isHoldKey)
      const repeated = held.find((key, i) => held.indexOf(key) !== i)
      if (repeated !== undefined) return `its metadata gives '${repeated}' more than once`
    }
  }
  if (metadata === null || typeof metadata !== "object" || Array.isArray(metadata)) {
    return "its metadata is not a JSON object"
  }
  // Walked with a stack, not by recursion: metadata nested 200,000 deep overflowed the call stack.
  const stack: Array<{ readonly value: unknown; readonly depth: number; readonly where: string }> = [
    { value: metadata, depth: 0, where: "" }
  ]
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const { depth, value, where } = next
    if (depth > maxHoldDepth) return `its metadata is nested more than ${maxHoldDepth} levels deep`
    if (typeof value === "string") {
      // Text that is itself JSON of an object or array (or of such text): a hold inside it counts.
      if (!/^\s*[{["]/.test(value)) continue
      try {
        stack.push({ value: JSON.parse(value), depth: depth + 1, where })
      } catch {
        // only text
      }
      continue
    }
    if (value === null || typeof value !== "object") continue
    for (const [key, inner] of Array.isArray(value) ? value.entries() : Object.entries(value)) {
      const at = where === "" ? String(key) : `${where}.${key}`
      if (typeof key === "string" && isHoldKey(key)) {
        const hold = legalHoldValue(inner)
        if (hold === false) continue
        // Never JSON.stringify: the value may be nested deep enough to overflow it.
        const shown = inner === null || typeof inner !== "object"
          ? String(inner)
          : Array.isArray(inner)
          ? inner.length === 0 ? "[]" : "[…]"
          : Object.keys(inner).length === 0
          ? "{}"
          : "{…}"
        if (depth === 0 && key === "legal_hold") {
          return hold ? "held" : `legal_hold '${shown}' in its metadata is not a boolean`
        }
        return `its metadata has '${at}' (read as legal_hold) set to '${shown.slice(0, 80)}'`
      }
      stack.push({ value: inner, depth: depth + 1, where: at })
    }
  }
  return undefined
}

/**
 * The one rule for a destructive decision on an item (purge): the refusal when its `legal_hold` column says held or its
 * metadata (raw, as the database holds it) cannot rule a hold out; `undefined` when the item may go.
 */
export const legalHoldRefusal = (
  tombstone: string,
  column: boolean,
  metadata: unknown
): LegalHold | undefined => {
  if (column) return new LegalHold({ tombstone })
  const doubt = metadataDoubt(metadata)
  return doubt === undefined ? undefined : new LegalHold({ tombstone, doubt: doubt === "held" ? undefined : doubt })
}

/**
 * Two approvers are one when their names differ only in case, spacing, width or invisible characters: `alice`,
 * `Alice`, `alice ` and `alice\u200b` passed as a second approver for `alice`.
 */
export const sameApprover = (a: string, b: string): boolean => approverKey(a) === approverKey(b)
/** An approver's name as approvers are told apart: empty when it names no one. */
export const approverKey = (name: string): string => name.normalize("NFKC").replace(/\p{Cf}/gu, "").trim().toLowerCase()

export class SameApprover extends Data.TaggedError("SameApprover")<{ readonly actor: string }> {
  override get message() {
    return `primary and secondary approvers must be distinct (both are '${this.actor}')`
  }
}

/** Reading the content to store failed, or it changed while it was being stored. */
export class PayloadSourceError
  extends Data.TaggedError("PayloadSourceError")<{ readonly path: string; readonly detail: string }>
{
  override get message() {
    return `${this.path}: ${this.detail}`
  }
}

export type ReadError = StoreError | TombstoneNotFound

export interface ArchiveOptions {
  readonly beforeCommit?: ((archived: ReadonlyArray<Archived>) => Effect.Effect<void>) | undefined
}

// ---- the port -----------------------------------------------------------------------------------------------------

export class ArchiveStore extends Context.Tag("@codex-archive/core/ArchiveStore")<ArchiveStore, {
  readonly backend: StoreBackend
  /** The largest content this backend stores inline, whatever the configured limit (MariaDB: one packet-safe chunk). */
  readonly inlineCap: number
  /** Where the archive lives, credentials redacted: for messages and evidence. */
  readonly location: string
  /**
   * The files the archive keeps on this machine (an embedded database and its journals; none for a server): a store
   * never archives them, nothing restored or written by the tool replaces them.
   */
  readonly files?: ReadonlyArray<Guarded> | undefined
  /**
   * Stores every entry in one transaction: all or nothing. Entries sharing content share one artifact. `beforeCommit`
   * is told what the transaction holds as it is about to commit (again on a retry): a caller stopped during the
   * commit can then ask `locate` whether it did.
   */
  readonly archive: (
    entries: ReadonlyArray<ArchiveEntry>,
    options?: ArchiveOptions
  ) => Effect.Effect<ReadonlyArray<Archived>, StoreError | PayloadSourceError>
  /**
   * Removes items `archive` just returned, with their events and tags, in one transaction: a store whose evidence
   * lines could not be written takes its group back, so no item is left without its line. Their artifacts stay,
   * unreferenced, for the next store of the same content to reuse.
   */
  readonly withdraw: (itemIds: ReadonlyArray<string>) => Effect.Effect<void, StoreError>
  /** Finds items by tombstone in as few round trips as the backend allows; unknown tombstones are absent. */
  readonly locate: (tombstones: ReadonlyArray<string>) => Effect.Effect<ReadonlyMap<string, Located>, StoreError>
  /** Compressed inline payloads by artifact id, in one round trip. */
  readonly inlinePayloads: (
    artifactIds: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyMap<string, Uint8Array>, StoreError>
  /** The compressed chunks of a chunked artifact, in order, a few at a time (bounded memory). */
  readonly chunks: (artifactId: string) => Stream.Stream<Uint8Array, StoreError>
  /** Records restores (item `restored_at` and a RESTORE event each) in one transaction. */
  readonly recordRestores: (records: ReadonlyArray<RestoreRecord>) => Effect.Effect<void, StoreError>
  /** Set when payloads can be read in other threads of this process (an embedded database file). */
  readonly directReads?: DirectReads | undefined
  readonly list: (filter: ListFilter) => Effect.Effect<ReadonlyArray<ListedItem>, StoreError>
  /**
   * One page of `list`, in its order: the items after the item `after` (an item id from an earlier page; none: from
   * the newest), at most `filter.limit`. Keyset pagination, so a long `list` holds one page, never all its rows.
   */
  readonly listPage: (
    filter: ListFilter,
    after: string | undefined
  ) => Effect.Effect<ReadonlyArray<ListedItem>, StoreError>
  readonly show: (tombstone: string) => Effect.Effect<ItemDetail, ReadError>
  readonly requestPrune: (tombstone: string, actor: string, reason: string) => Effect.Effect<void, ReadError>
  readonly approveDelete: (request: PurgeRequest) => Effect.Effect<PurgeOutcome, ReadError | LegalHold | SameApprover>
  /** Every artifact (or those of the given tombstones), for `verify`. */
  readonly artifacts: (tombstones?: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<ArtifactSummary>, StoreError>
  /**
   * One page of every artifact, in the store's page order: those after `after` (the last one's `pageKey`, its SHA-256
   * on the servers, its rowid on SQLite; none: from the first), at most `limit`. Keyset pagination, so a whole-archive
   * `verify` holds one page, never the archive.
   */
  readonly artifactPage: (
    after: string | undefined,
    limit: number
  ) => Effect.Effect<ReadonlyArray<ArtifactSummary>, StoreError>
  /** Chunk rows no artifact accounts for: `verify`, `health-check`. */
  readonly orphanChunks: Effect.Effect<OrphanChunks, StoreError>
  /** Removes them (overwritten first on SQLite, so their bytes leave the file), in one transaction: `gc`. */
  readonly removeOrphanChunks: Effect.Effect<OrphanChunks, StoreError>
  /**
   * Orphaned chunk rows a group of artifacts at a time, in artifact id order: those after `after` (none: from the
   * first), at most `limit` artifacts. `gc --dry-run` holds one group, never every id.
   */
  readonly orphanChunkPage: (after: string | undefined, limit: number) => Effect.Effect<OrphanChunks, StoreError>
  /** Finds such a group and removes its rows, in one transaction: `gc`, a group at a time. */
  readonly removeOrphanChunkPage: (after: string | undefined, limit: number) => Effect.Effect<OrphanChunks, StoreError>
  /** The highest applied migration, and a cheap probe of the item table. */
  readonly schemaVersion: Effect.Effect<number, StoreError>
  readonly probe: Effect.Effect<number, StoreError>
}>() {}
