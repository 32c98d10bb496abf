/**
 * One restore manifest entry: the Schema every format's record is decoded with (JSON, JSON Lines and CSV alike), the
 * checked `Entry` a batch restores, and the `ManifestError` any part of reading a manifest fails with.
 */
import { Data, Either, Schema } from "effect"
import * as path from "node:path"
import * as Containment from "./Containment.js"
import * as FileOps from "./FileOps.js"
import * as Ids from "./Ids.js"
import * as RecordSchema from "./internal/RecordSchema.js"
import * as Walk from "./Walk.js"

export interface Entry {
  readonly tombstone: string
  /** Absolute path. */
  readonly output: string
  readonly actor: string
  /** The content's SHA-256 when the manifest records it (`store --manifest-out`, stub trees). */
  readonly sha256?: string | undefined
  /** Where `sha256` comes from when not the manifest ("stub FILE"), for a mismatch's message. */
  readonly sha256From?: string | undefined
  /** Where the output really lands, kept inside the manifest's (or stub tree's) folder while the batch runs. */
  readonly contained?: FileOps.Contained | undefined
}

/** A manifest that cannot be used as it is: nothing is restored. `where` is "line N" or "entry N" when known. */
export class ManifestError extends Data.TaggedError("ManifestError")<{
  readonly file: string
  readonly where: string | undefined
  readonly problem: string
  /** What `file` is: a manifest file, or the stub folder of `batch-restore --stubs` (default: a manifest). */
  readonly kind?: "manifest" | "stub folder" | undefined
}> {
  override get message() {
    return `${this.kind ?? "manifest"} ${this.file}${
      this.where === undefined ? "" : ` (${this.where})`
    }: ${this.problem}`
  }
}

export interface LoadOptions {
  /** Actor for entries that name none (`--actor`/`--by`, `CODEX_ACTOR`, the OS user). */
  readonly defaultActor: string
}

/**
 * A checked manifest read again as the batch runs: `total` entries, every one checked (and no two sharing an output)
 * before `entries` is first read, none of them held in memory. `entries` throws a `ManifestError` if the file no longer
 * holds what was checked.
 */
export interface Source {
  readonly total: number
  readonly entries: () => Iterable<Entry>
  /**
   * Once `entries` has ended: what it found changed that did not stop it (a stub tree's stubs added, removed or
   * renamed while it ran), for the batch to fail with after finishing.
   */
  readonly changed?: () => ManifestError | undefined
}

/** An output as written: relative to the manifest's folder or absolute, and a name a file can have. */
const Output = Schema.String.pipe(
  Schema.filter((output) =>
    !output.includes("\0") || `${JSON.stringify(output)} contains a NUL byte, which no file name can hold`
  ),
  // A JSON escape of half a surrogate pair (`\ud800`) is no character: Node writes it as U+FFFD, another name.
  Schema.filter((output) =>
    (output as string & { isWellFormed(): boolean }).isWellFormed() ||
    `${JSON.stringify(output)} holds half a surrogate pair (a \\uD800-\\uDFFF escape alone), which no UTF-8 name can`
  )
)

/** One entry as any format gives it; other fields (a CSV's extra columns, notes) are ignored. */
export const Fields = Schema.compose(
  RecordSchema.given(
    ["tombstone", "output", "actor", "sha256"],
    "each manifest entry must be an object with tombstone and output"
  ),
  Schema.Struct({
    tombstone: Ids.TombstoneIdFromString,
    output: Output,
    actor: Schema.optionalWith(Schema.String, { exact: true }),
    sha256: Schema.optionalWith(Ids.Sha256FromString, { exact: true })
  }),
  { strict: false }
)

const decodeRecord = Schema.decodeUnknownEither(Fields)

/**
 * A checker for the records of one manifest: decodes a record, places its output below `baseDir` (as written and
 * really) and gives it an actor; a string is the problem, naming the field.
 */
export const checker = (options: LoadOptions & { readonly baseDir: string }): (value: unknown) => Entry | string => {
  const baseDir = path.resolve(options.baseDir)
  const place = Containment.within(baseDir)
  const defaultActor = options.defaultActor.trim()
  return (value) => {
    const decoded = decodeRecord(value)
    if (Either.isLeft(decoded)) return RecordSchema.describe(decoded.left.issue)
    const { actor, output, sha256, tombstone } = decoded.right
    // Never trimmed: `a.txt ` is another file than `a.txt`, and `store --manifest-out` writes such names as they are.
    if (FileOps.namesNoFile(output)) {
      return `output ${RecordSchema.quoted(output)} ${FileOps.namesNoFileProblem}`
    }
    // Before it is placed: placing a path of a million folders overflowed the stack (or ran for minutes).
    const long = FileOps.tooLong(path.resolve(baseDir, output))
    if (long !== undefined) return `output ${RecordSchema.quoted(output)} ${long}`
    const placed = place(output)
    if (placed === undefined) return `output ${RecordSchema.quoted(output)} is outside the manifest's folder ${baseDir}`
    // Only a real path read back with U+FFFD can be one whose bytes are not UTF-8: others cost no check.
    const notUtf8 = placed.real.includes("\uFFFD") ? Containment.notUtf8(path.dirname(placed.path)) : undefined
    if (notUtf8 !== undefined) {
      return `output ${
        RecordSchema.quoted(output)
      } lies in a folder whose real path '${notUtf8}' is not UTF-8, which ` +
        "Node.js reads as another folder; rename that folder"
    }
    // Where it really lands may be longer (a folder link on the way): a dry run said RESTORABLE of such an output.
    const longer = FileOps.tooLong(placed.real)
    if (longer !== undefined) return `output ${RecordSchema.quoted(output)} ${longer}`
    const skipped = Walk.skippedFolderOn(Containment.inside(placed.root, placed.real))
    if (skipped !== undefined) {
      return `output ${RecordSchema.quoted(output)} goes into a ${skipped} folder, which no store archives`
    }
    const who = actor?.trim() || defaultActor
    if (who === "") return "no actor: give one in the entry or with --actor"
    const contained = { root: placed.root, path: placed.real }
    return sha256 === undefined
      ? { tombstone, output: placed.path, actor: who, contained }
      : { tombstone, output: placed.path, actor: who, sha256, contained }
  }
}
