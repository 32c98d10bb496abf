/**
 * What a restore does at its output, decided before any byte is fetched: write it, leave it (the same content is
 * already there) or refuse; and, once written, why a file could not be put in place. `RestoreTarget` chooses the
 * output's path; this decides what happens there, for single restores, batches and batch dry runs alike.
 */
import { Data, Effect, Either } from "effect"
import * as fs from "node:fs"
import type { ArchiveStore, Located, StoreError } from "./ArchiveStore.js"
import { PayloadPurged } from "./ArchiveStore.js"
import * as Codec from "./Codec.js"
import * as FileOps from "./FileOps.js"
import * as Guarded from "./Guarded.js"
import * as Hash from "./Hash.js"
import type { Request } from "./Restorer.js"
import * as Tombstone from "./Tombstone.js"

export type Action = "write" | "unchanged"

/** A SHA-256 the restore was given for its item, and where it comes from ("stub t/one.txt", "manifest m.json"). */
export interface Expected {
  readonly sha256: string
  readonly from: string
}

/**
 * The item's artifact holds other content than its stub, its manifest entry or its own metadata says: an item row
 * pointed at another item's artifact restores someone else's file, so nothing is fetched or written.
 */
export class ContentMismatch extends Data.TaggedError("ContentMismatch")<{
  readonly tombstone: string
  readonly artifactId: string
  /** The artifact's `content_sha256`. */
  readonly actual: string
  readonly expected: string
  /** Where `expected` comes from. */
  readonly from: string
}> {
  override get message() {
    return `tombstone ${this.tombstone}: ${this.from} gives sha256 ${this.expected}, but its artifact ${this.artifactId} ` +
      `holds content with sha256 ${this.actual} (content_sha256)`
  }
}

/** Where a digest in an item's metadata comes from, in a `ContentMismatch`. */
export const metadataSource = "the item's metadata (metadata.sha256)"

/**
 * Whether the located artifact holds the content the caller was told of (`expected`: a stub's or manifest entry's
 * SHA-256) and the content its own item records (`Located.recordedSha256`). Every restore path and `verify` ask this.
 */
export const mismatch = (
  located: Pick<Located, "tombstone" | "artifactId" | "sha256" | "recordedSha256">,
  expected?: Expected | undefined
): ContentMismatch | undefined => {
  const given = expected !== undefined && expected.sha256 !== located.sha256
    ? expected
    : located.recordedSha256 !== undefined && located.recordedSha256 !== located.sha256
    ? { sha256: located.recordedSha256, from: metadataSource }
    : undefined
  return given === undefined ? undefined : new ContentMismatch({
    tombstone: located.tombstone,
    artifactId: located.artifactId,
    actual: located.sha256,
    expected: given.sha256,
    from: given.from
  })
}

/**
 * Decides what to do with the output: write it, leave it (same content already there), or refuse. Synchronous, so
 * batch dry runs and prefetch planning use the same rule as the restore itself.
 */
export const outputAction = (
  located: Located,
  request: Pick<Request, "output" | "force">
): Action | FileOps.OutputError => {
  const existing = FileOps.inspect(request.output)
  switch (existing._tag) {
    case "Absent":
      return "write"
    case "Directory":
      return new FileOps.OutputError({
        output: request.output,
        problem: "is-directory",
        detail: "output is a directory"
      })
    case "Link":
      // Replaced by the restored file with --force (the link, not what it leads to), as `tar -x` replaces one.
      return request.force ? "write" : new FileOps.OutputError({
        output: request.output,
        problem: "exists",
        detail: "output is a symbolic link (use --force to replace the link itself; what it leads to is left as is)"
      })
    case "Other":
      return new FileOps.OutputError({
        output: request.output,
        problem: "exists",
        detail: "output exists and is not a regular file"
      })
    case "File": {
      // An output that cannot be read (permissions) is compared as different: a failure naming it, not a defect.
      let unreadable: unknown
      const digest = existing.size !== located.sizeBytes ? undefined : (() => {
        try {
          return Hash.file(request.output)
        } catch (e) {
          unreadable = e
          return undefined
        }
      })()
      if (digest === located.sha256) return "unchanged"
      if (request.force) return "write"
      // A stub standing where the file was is what `restore STUB` replaces in place; one written into since is not.
      const besides = Tombstone.stubOf(request.output, located.tombstone, existing.size)
      if (besides === 0) return "write"
      if (besides !== undefined) {
        const lines = besides === 1 ? "1 line" : `${besides} lines`
        const detail = `output is this tombstone's stub but holds ${lines} besides the stub (use --force to replace it)`
        return new FileOps.OutputError({ output: request.output, problem: "exists", detail })
      }
      if (unreadable !== undefined) {
        const detail = `output exists and cannot be read to compare: ${
          FileOps.describeErrno(unreadable)
        } (use --force to replace it)`
        return new FileOps.OutputError({ output: request.output, problem: "exists", detail })
      }
      return new FileOps.OutputError({
        output: request.output,
        problem: "exists",
        detail: "output exists with different content (use --force to replace it)"
      })
    }
  }
}

/** The output still holds exactly `content` (a size, then a SHA-256): what a resumed item is skipped on. */
export const stillHolds = (output: string, content: { readonly bytes: number; readonly sha256: string }): boolean => {
  try {
    const st = fs.lstatSync(output)
    return st.isFile() && st.size === content.bytes && Hash.file(output) === content.sha256
  } catch {
    return false
  }
}

/** A store error that names a row the archive holds but its schema refuses: that row's items fail, not the group. */
const refusedRow = (e: StoreError) => e.malformedRow === true

/**
 * `fetch` of `keys` in one round trip; a group holding a row the store refuses is fetched again a key at a time, so
 * that only that row's keys fail, each with the store's error naming the row. A store that fails for another reason
 * fails the whole group.
 */
const rowByRowOnRefusal = <A>(
  keys: ReadonlyArray<string>,
  fetch: (keys: ReadonlyArray<string>) => Effect.Effect<ReadonlyMap<string, A>, StoreError>
): Effect.Effect<ReadonlyMap<string, A | StoreError>, StoreError> =>
  Effect.catchIf(fetch(keys), refusedRow, () =>
    Effect.gen(function*() {
      const found = new Map<string, A | StoreError>()
      for (const key of new Set(keys)) {
        const one = yield* fetch([key]).pipe(
          Effect.map((fetched): A | StoreError | undefined => fetched.get(key)),
          Effect.catchIf(refusedRow, Effect.succeed)
        )
        if (one !== undefined) found.set(key, one)
      }
      return found
    }))

/** Locates items by tombstone: a row the store refuses (a negative size, a digest that is not one) fails its item. */
export const locate = (
  store: ArchiveStore["Type"],
  tombstones: ReadonlyArray<string>
): Effect.Effect<ReadonlyMap<string, Located | StoreError>, StoreError> => rowByRowOnRefusal(tombstones, store.locate)

/** Inline payloads by artifact id: a payload row the store refuses (not bytes) fails the items of its artifact. */
export const payloads = (
  store: ArchiveStore["Type"],
  artifactIds: ReadonlyArray<string>
): Effect.Effect<ReadonlyMap<string, Uint8Array | StoreError>, StoreError> =>
  rowByRowOnRefusal(artifactIds, store.inlinePayloads)

/**
 * An output that is a guarded file (`Guarded`) fails first, even with `force`. An artifact that is not the content the
 * item's stub, manifest entry or metadata names (`mismatch`), purged content, or stored bytes no encoding of the
 * item's size could take (`Codec.maxEncodedSize`), fail before the output is looked at and before anything is
 * fetched; otherwise the output decides, and content to be written must have a codec this build reads.
 */
export const plan = (
  located: Located,
  request: Pick<Request, "output" | "force" | "expected">,
  guarded: ReadonlyArray<Guarded.Guarded> = []
): Either.Either<
  Action,
  ContentMismatch | PayloadPurged | Codec.CorruptPayload | Codec.UnknownCodec | FileOps.OutputError
> => {
  // Even with --force: a restore's rename over the archive database or the evidence log would destroy it.
  const refused = Guarded.refusal(request.output, guarded, true)
  if (refused !== undefined) return Either.left(refused)
  const wrong = mismatch(located, request.expected)
  if (wrong !== undefined) return Either.left(wrong)
  if (located.layout === "purged") {
    return Either.left(new PayloadPurged({ tombstone: located.tombstone, sha256: located.sha256 }))
  }
  const oversized = Codec.oversized(located.codec || Codec.defaultCodec, located)
  if (oversized !== undefined) return Either.left(oversized)
  const action = outputAction(located, request)
  if (typeof action !== "string") return Either.left(action)
  // Content that is to be written must be decodable; content already in place is not read.
  const codec = action === "write" ? Codec.forName(located.codec) : undefined
  return codec?._tag === "Left" ? Either.left(codec.left) : Either.right(action)
}

/** Why a written file could not be put in place: the file system said no, or its way left its folder. */
export const placeFailure = (
  request: Pick<Request, "output">,
  problem: string,
  reply: { readonly detail: string; readonly code?: string | undefined }
): FileOps.OutputError =>
  problem === "escapes"
    ? new FileOps.OutputError({
      output: request.output,
      problem: "escapes",
      detail: `output escapes its folder: ${reply.detail}`
    })
    : new FileOps.OutputError({
      output: request.output,
      problem: "unwritable",
      detail: `cannot write output: ${FileOps.describeErrno({ message: reply.detail, code: reply.code })}`
    })

/** A contained request's place: the real output path below the real root, and its temp file beside it. */
export const containedTarget = (contained: FileOps.Contained) => ({
  root: contained.root,
  output: contained.path,
  temp: FileOps.tempFor(contained.path)
})
