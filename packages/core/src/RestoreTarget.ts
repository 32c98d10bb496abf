/**
 * Where `restore` writes when it is not told: a stub is restored where it stands, a bare tombstone to the path recorded
 * at store time, which is archive content and so untrusted: it must stay inside a root folder unless allowed out.
 */
import { Data, Effect, Either } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { ArchiveStore, type StoreError, TombstoneNotFound } from "./ArchiveStore.js"
import * as Containment from "./Containment.js"
import * as FileOps from "./FileOps.js"
import * as Ids from "./Ids.js"
import type * as RestorePlan from "./RestorePlan.js"
import * as Tombstone from "./Tombstone.js"
import * as Walk from "./Walk.js"

export class OutsideRoot extends Data.TaggedError("OutsideRoot")<{
  readonly tombstone: string
  readonly recorded: string
  readonly root: string
}> {
  override get message() {
    // A forged path may be megabytes long: the line shows its start and its length.
    const shown = this.recorded.length > 200
      ? `${JSON.stringify(this.recorded.slice(0, 100))}... (${Buffer.byteLength(this.recorded)} bytes)`
      : JSON.stringify(this.recorded)
    const recorded = `tombstone ${this.tombstone}: recorded path ${shown}`
    if (this.recorded.includes("\0")) return `${recorded} holds a NUL byte; give an OUTPUT`
    const long = FileOps.tooLong(path.resolve(this.root, this.recorded))
    if (long !== undefined) return `${recorded} ${long}; give an OUTPUT`
    if (FileOps.namesNoFile(this.recorded)) {
      return `${recorded} ${FileOps.namesNoFileProblem}; give an OUTPUT`
    }
    if (unsure(this.recorded)) {
      return `${recorded} holds U+FFFD or half a surrogate pair, which may stand for bytes that are not UTF-8 (another ` +
        "name than the one stored); give an OUTPUT"
    }
    const skipped = Walk.skippedFolderOn(this.recorded)
    const where = path.isAbsolute(this.recorded)
      ? "is absolute"
      : skipped !== undefined
      ? `goes into a ${skipped} folder, which no store archives`
      : `leads outside ${this.root}`
    return `${recorded} ${where}; give an OUTPUT, or --allow-outside to write it there`
  }
}

/**
 * A recorded path that may not be the one stored: U+FFFD is what a text column's bytes that are not UTF-8 read back
 * as, another name (a store records none, skipping such names), and half a surrogate pair is written as it.
 */
const unsure = (recorded: string): boolean =>
  recorded.includes("\uFFFD") || !(recorded as string & { isWellFormed(): boolean }).isWellFormed()

/**
 * A stub's text and where it really is, read once without following a link; `undefined` when nothing is there, else
 * what is wrong.
 */
const readStub = (
  file: string
): { readonly text: string; readonly real: Buffer | undefined } | { readonly problem: string } | undefined => {
  try {
    return FileOps.readBoundedWhere(file, Tombstone.maxStubBytes, { noFollow: true })
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === "ENOENT" || code === "ENOTDIR") return undefined
    return {
      problem: code === "ELOOP"
        ? "not a stub file (a symbolic link; give the stub itself)"
        : code === undefined
        ? "not a stub file (too large or not a regular file)"
        : `not a stub file (${FileOps.describeErrno(e)})`
    }
  }
}

/**
 * A restore argument: a tombstone id (output as given, if any), or a stub file (restored in place by default), whose
 * `# SHA256:` line the restored content must match (`expected`).
 */
export const fromArgument = (
  value: string,
  output: string | undefined
): Effect.Effect<
  {
    readonly tombstone: string
    readonly output: string | undefined
    readonly expected?: RestorePlan.Expected | undefined
    /**
     * Where a named output (OUTPUT, a stub's place) is kept while it is written (see `containedAt`), or why not;
     * `undefined` only without one (the recorded path).
     */
    readonly contained: FileOps.Contained | string | undefined
  },
  Ids.InvalidTombstone | Tombstone.MalformedStub
> =>
  Effect.gen(function*() {
    const asId = Ids.decodeTombstoneId(value)
    if (Either.isRight(asId)) {
      return { tombstone: asId.right, output, contained: output === undefined ? undefined : containedAt(output) }
    }
    // One no-follow open decides: a link swapped in after a check would otherwise be followed (to /etc/shadow, a FIFO).
    const read = readStub(value)
    if (read === undefined) return yield* asId.left
    if ("problem" in read) return yield* new Tombstone.MalformedStub({ source: value, problem: read.problem })
    const stub = yield* Tombstone.parse(read.text, value)
    return {
      tombstone: stub.tombstone,
      output: output ?? value,
      expected: { sha256: stub.sha256, from: `stub ${value}` },
      // In place, the stub's own folder as it was when the stub was read: one swapped for a link since is refused.
      contained: output !== undefined ? containedAt(output) : stubPlace(value, read.real)
    }
  })

/** A stub restored in place: kept in the folder it was read from (its real path then), or why it cannot be. */
const stubPlace = (stub: string, real: Buffer | undefined): FileOps.Contained | string => {
  if (real === undefined) return containedAt(path.resolve(stub))
  const folder = real.subarray(0, Math.max(real.lastIndexOf(0x2f), 1))
  const notUtf8 = Containment.shownIfNotUtf8(folder)
  if (notUtf8 !== undefined) return Containment.notUtf8Folder(notUtf8)
  return { root: folder.toString(), path: path.join(folder.toString(), path.basename(stub)) }
}

/**
 * The absolute output for a recorded path: under `root`, and refused when it is absolute or leads out of `root`
 * (`..`, or a symbolic link on the way), unless `allowOutside`; `outside` says when that permission was used.
 */
export const recordedOutput = (options: {
  readonly tombstone: string
  readonly recorded: string
  readonly root: string
  readonly allowOutside: boolean
}): Either.Either<{ readonly output: string; readonly outside: boolean }, OutsideRoot> => {
  const root = path.resolve(options.root)
  const output = path.resolve(root, options.recorded)
  // No file system takes it, and placing a path of a million folders overflowed the stack (or ran for minutes).
  if (FileOps.tooLong(output) !== undefined) {
    return Either.left(new OutsideRoot({ tombstone: options.tombstone, recorded: options.recorded, root }))
  }
  // Forged: a store records neither a path into `.git` (a hook would run) or `.codex`, nor one holding a NUL byte.
  const outside = path.isAbsolute(options.recorded) || !Containment.contains(root, output) ||
    Walk.skippedFolderOn(options.recorded) !== undefined
  if (
    options.recorded.includes("\0") || FileOps.namesNoFile(options.recorded) || unsure(options.recorded) ||
    (outside && !options.allowOutside)
  ) {
    return Either.left(new OutsideRoot({ tombstone: options.tombstone, recorded: options.recorded, root }))
  }
  return Either.right({ output, outside })
}

/**
 * A recorded output under `root`, as the writer keeps it there: it creates the folders below the root's real path
 * following no link, and checks the way again at rename, so a folder swapped for a link after the check is refused.
 */
export const containedIn = (root: string, output: string): FileOps.Contained => {
  const real = fs.realpathSync.native(path.resolve(root))
  return { root: real, path: path.join(real, path.relative(path.resolve(root), output)) }
}

/**
 * A named output (a stub's place, an OUTPUT, a recorded path let out of the root) kept on the way it has now: its
 * nearest existing folder, as it resolves at the start, is the root the writer keeps it under. A folder on the way
 * swapped for a link while the archive is read is then refused, not written through: a restore as root into a folder
 * another user can write put the file wherever that user's link led. A string is why it cannot be kept.
 */
export const containedAt = (given: string): FileOps.Contained | string => {
  const output = path.resolve(given)
  const isFolder = (p: string) => {
    try {
      return fs.statSync(p, { throwIfNoEntry: false })?.isDirectory() === true
    } catch {
      return false // below a file (ENOTDIR): the writer names what is in the way
    }
  }
  let folder = path.dirname(output)
  while (!isFolder(folder) && path.dirname(folder) !== folder) folder = path.dirname(folder)
  const notUtf8 = Containment.notUtf8(folder)
  return notUtf8 === undefined ? containedIn(folder, output) : Containment.notUtf8Folder(notUtf8)
}

/**
 * The absolute output of a single restore: `given` when there is one; else the path recorded at store time, which
 * the archive supplies, placed under `root` (see `recordedOutput`; a permitted way out is logged as a warning).
 */
export const outputOf = (options: {
  readonly tombstone: string
  readonly given: string | undefined
  readonly root: string
  readonly allowOutside: boolean
}): Effect.Effect<string, TombstoneNotFound | StoreError | OutsideRoot, ArchiveStore> =>
  Effect.gen(function*() {
    if (options.given !== undefined) return path.resolve(options.given)
    const { tombstone, root, allowOutside } = options
    const located = (yield* (yield* ArchiveStore).locate([tombstone])).get(tombstone)
    if (located === undefined) return yield* new TombstoneNotFound({ tombstone })
    const placed = yield* recordedOutput({ tombstone, recorded: located.path, root, allowOutside })
    if (placed.outside) {
      yield* Effect.logWarning(
        `restoring outside ${path.resolve(root)} (--allow-outside): recorded path ${JSON.stringify(located.path)}`
      )
    }
    return placed.output
  })
