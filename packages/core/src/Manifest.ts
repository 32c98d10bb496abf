/**
 * Restore manifests (spec §7.1, fixed per §12): JSON (array or `{items}`), JSON Lines and CSV (`ManifestFormat`), every
 * entry decoded by one Schema and checked before anything is restored (`ManifestEntry`); a tree of tombstone stubs as a
 * manifest (`StubTree`); and the manifest `store --manifest-out` writes. Relative outputs resolve against the
 * manifest's folder and may not leave it, then or while the batch runs (`Containment`; each entry carries its real path
 * below the folder's real path: `FileOps.Contained`); two entries never share an output, by name or by file identity
 * (a folder link inside the manifest's folder, a hard link).
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Containment from "./Containment.js"
import * as FileOps from "./FileOps.js"
import * as DistinctOutputs from "./internal/DistinctOutputs.js"
import * as EventLoop from "./internal/EventLoop.js"
import * as RecordSchema from "./internal/RecordSchema.js"
import * as Utf8 from "./internal/Utf8.js"
import { type Entry, type LoadOptions, ManifestError, type Source } from "./ManifestEntry.js"
import * as ManifestEntry from "./ManifestEntry.js"
import * as ManifestFormat from "./ManifestFormat.js"
import * as StubTree from "./StubTree.js"
import type * as Tombstone from "./Tombstone.js"

export { type Entry, type LoadOptions, ManifestError, type Source } from "./ManifestEntry.js"
export { type Format, formatOf, maxManifestBytes } from "./ManifestFormat.js"
/** Kept for hosts that check containment through `Manifest`; `Containment` is its home. */
export const contains = Containment.contains

/** Reads and checks a manifest file; the format comes from its extension (JSON vs JSON Lines also by content). */
export const load = (file: string, options: LoadOptions): Effect.Effect<ReadonlyArray<Entry>, ManifestError> =>
  Effect.flatMap(open(file, options), (source) => collect(source, path.resolve(file)))

/** The entries of a source, all in memory (small manifests, tests). */
const collect = (source: Source, file: string) =>
  Effect.try({ try: () => Array.from(source.entries()), catch: (e) => asManifestError(e, file) })

/**
 * Opens a manifest file as a `Source`: streamed twice, once now to check every entry, then as the batch runs. Memory
 * is bounded by the entry in hand, plus a fixed buffer for finding two entries with one output (`DistinctOutputs`).
 */
export const open = (file: string, options: LoadOptions): Effect.Effect<Source, ManifestError> =>
  Effect.suspend(() => {
    const absolute = path.resolve(file)
    const format = ManifestFormat.formatOf(absolute)
    if (format === undefined) {
      return Effect.fail(
        new ManifestError({
          file: absolute,
          where: undefined,
          problem: "unknown manifest format: the name must end in .json, .jsonl or .csv"
        })
      )
    }
    let first: string
    let stamp: string
    try {
      stamp = stampOf(absolute)
      first = ManifestFormat.firstText(absolute)
    } catch (e) {
      return Effect.fail(
        (e as NodeJS.ErrnoException).code === "ENOENT"
          ? new ManifestError({ file: absolute, where: undefined, problem: "no such file" })
          : asManifestError(e, absolute)
      )
    }
    const raws = ManifestFormat.records(absolute, format, first)
    return checked(raws, { ...options, file: absolute, baseDir: path.dirname(absolute) }, () => {
      try {
        return stampOf(absolute) === stamp
      } catch {
        return false // gone or unreadable since: not the file checked
      }
    })
  })

/** What changes when a file's bytes do: an in-place rewrite of the same length too (its change time, in ns). */
const stampOf = (file: string): string => {
  const st = fs.statSync(file, { bigint: true })
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`
}

/** Entries read between two looks at the file's stamp (`checked`): a look costs a `stat`. */
const entriesPerLook = 64

/** Parses manifest text; `file` names it in errors and `baseDir` anchors relative outputs. */
export const parse = (
  text: string,
  options: LoadOptions & { readonly file: string; readonly format: ManifestFormat.Format; readonly baseDir: string }
): Effect.Effect<ReadonlyArray<Entry>, ManifestError> =>
  Effect.suspend(() => {
    let raws: ReadonlyArray<ManifestFormat.Raw>
    try {
      raws = ManifestFormat.textRecords(text, options.format, options.file)
    } catch (e) {
      return Effect.fail(asManifestError(e, options.file))
    }
    return Effect.flatMap(checked(() => raws, options), (source) => collect(source, options.file))
  })

/** The error a streamed read threw, as a `ManifestError` naming the file. */
const asManifestError = (e: unknown, file: string): ManifestError =>
  e instanceof ManifestError
    ? e
    : new ManifestError({
      file,
      where: undefined,
      problem: e instanceof Utf8.NotUtf8 ? e.message : `cannot read: ${FileOps.describeErrno(e)}`
    })

/**
 * Checks every record once, streamed (each entry, and that no two share an output, by name or by file identity),
 * and returns the source that reads them again, checked the same way.
 */
const checked = (
  raws: () => Iterable<ManifestFormat.Raw>,
  options: LoadOptions & { readonly file: string; readonly baseDir: string },
  /** Whether the file is still the one checked; absent for text in memory. */
  unchanged?: () => boolean
): Effect.Effect<Source, ManifestError> =>
  Effect.gen(function*() {
    const fail = (where: string | undefined, problem: string) =>
      Effect.fail(new ManifestError({ file: options.file, where, problem }))
    const read = function*(): Generator<readonly [ManifestFormat.Raw, Entry | string]> {
      // A checker per pass: it holds one real path per folder, and a folder holds many entries.
      const check = ManifestEntry.checker(options)
      for (const raw of raws()) yield [raw, check(raw.value)]
    }
    // In slices: a million entries take seconds, and a Ctrl-C meanwhile is seen and stops the check.
    const verdict = yield* EventLoop.sliced(() =>
      DistinctOutputs.checking(read, {
        entryOf: ([, entry]) => typeof entry === "string" ? undefined : entry,
        whereOf: ([raw]) => raw.where,
        changed: () =>
          new ManifestError({ file: options.file, where: undefined, problem: "changed while it was being read" })
      }), (e) => asManifestError(e, options.file))
    if (verdict._tag === "Refused") return yield* fail(verdict.item[0].where, verdict.item[1] as string)
    if (verdict._tag === "Duplicate") return yield* fail(verdict.item[0].where, verdict.problem)
    const total = verdict.total
    if (total === 0) return yield* fail(undefined, "contains no restore entries")
    if (unchanged?.() === false) return yield* fail(undefined, "changed while it was being read")
    // Entries are handed out only once the file is seen unchanged after they were read: an edit while the batch runs
    // (a valid entry rewritten to another output) would otherwise get past the check of every output.
    const changed = (where: string | undefined, detail?: string) =>
      new ManifestError({
        file: options.file,
        where,
        problem: `changed after it was checked${detail === undefined ? "" : `: ${detail}`}`
      })
    const entries = function*(): Generator<Entry> {
      let n = 0
      let held: Array<Entry> = []
      let where: string | undefined
      for (const [raw, entry] of read()) {
        if (typeof entry === "string") throw changed(raw.where, entry)
        n++
        held.push(entry)
        where = raw.where
        if (held.length === entriesPerLook) {
          if (unchanged?.() === false) throw changed(where)
          yield* held
          held = []
        }
      }
      if (unchanged?.() === false) throw changed(where)
      yield* held
      if (n !== total) throw changed(undefined, `${n} entries, not ${total}`)
    }
    return { total, entries: () => ({ [Symbol.iterator]: entries }) } satisfies Source as Source
  })

/** Every tombstone stub under `dir` (sorted, symbolic links not followed), each restored where it stands. */
export const fromStubs: (
  dir: string,
  options: LoadOptions
) => Effect.Effect<ReadonlyArray<Entry>, ManifestError | Tombstone.MalformedStub> = StubTree.load

/** A tree of stubs as a `Source`, walked as the batch runs (see `StubTree.open`). */
export const openStubs: (
  dir: string,
  options: LoadOptions
) => Effect.Effect<Source, ManifestError | Tombstone.MalformedStub> = StubTree.open

export interface Written {
  readonly tombstone: string
  /** Absolute path of the stored file: where a restore puts it back. */
  readonly output: string
  readonly sha256: string
}

interface WrittenItem {
  readonly tombstone: string
  readonly output: string
  readonly sha256: string
}

/**
 * The item a manifest at `file` holds for a stored file: its output relative to the manifest's folder, which it must
 * lie below (as written and really), since `load` refuses outputs that leave it.
 */
const itemOf = (file: string): (e: Written, ordinal: number) => WrittenItem | ManifestError => {
  const base = path.dirname(file)
  const place = Containment.within(base)
  return (e, ordinal) => {
    const output = path.resolve(e.output)
    if (place(output) === undefined) {
      return new ManifestError({
        file,
        where: `entry ${ordinal}`,
        problem: `${
          RecordSchema.quoted(output, "")
        } is outside the manifest's folder ${base}; write the manifest into a folder that contains every stored file`
      })
    }
    return { tombstone: e.tombstone, output: path.relative(base, output).split(path.sep).join("/"), sha256: e.sha256 }
  }
}

/**
 * Writes the manifest `store --manifest-out FILE` produces: a JSON array of `{tombstone, output, sha256}` with
 * outputs relative to the manifest's folder, atomically. Every output must lie inside that folder, since `load`
 * refuses outputs that leave it.
 */
export const write = (file: string, entries: ReadonlyArray<Written>): Effect.Effect<void, ManifestError> =>
  Effect.suspend(() => {
    const absolute = path.resolve(file)
    const item = itemOf(absolute)
    const items: Array<WrittenItem> = []
    for (const [i, e] of entries.entries()) {
      const written = item(e, i + 1)
      if (written instanceof ManifestError) return Effect.fail(written)
      items.push(written)
    }
    return Effect.try({
      try: () => FileOps.writeFileAtomic(absolute, JSON.stringify(items, null, 2) + "\n"),
      catch: (e) =>
        new ManifestError({ file: absolute, where: undefined, problem: `cannot write: ${FileOps.describeErrno(e)}` })
    })
  })

/**
 * The manifest `store --manifest-out FILE` produces, written as the store runs: entries are appended to a temporary
 * file beside it (one per line, the same JSON as `write`), which `commit` renames into place; `abort` removes it, so a
 * failed store leaves no manifest, whole or partial.
 */
export const writer = (file: string): Effect.Effect<{
  /** The manifest and the temporary it is written to: a store that walks their folder must not archive them. */
  readonly files: ReadonlyArray<string>
  readonly append: (entries: ReadonlyArray<Written>) => Effect.Effect<void, ManifestError>
  readonly commit: Effect.Effect<void, ManifestError>
  readonly abort: Effect.Effect<void>
}, ManifestError> =>
  Effect.suspend(() => {
    const absolute = path.resolve(file)
    const fail = (where: string | undefined, problem: string) => new ManifestError({ file: absolute, where, problem })
    let fd: number
    let temp: string
    try {
      ;({ fd, temp } = FileOps.createTemp(absolute, "manifest", 0o644))
      fs.writeFileSync(fd, "[")
    } catch (e) {
      return Effect.fail(fail(undefined, `cannot write: ${FileOps.describeErrno(e)}`))
    }
    const item = itemOf(absolute)
    let n = 0
    let open = true
    const close = () => {
      if (open) fs.closeSync(fd)
      open = false
    }
    return Effect.succeed({
      files: [absolute, temp],
      append: (entries) =>
        Effect.suspend(() => {
          let text = ""
          for (const e of entries) {
            const written = item(e, ++n)
            if (written instanceof ManifestError) return Effect.fail(written)
            text += `${n === 1 ? "" : ","}\n  ${JSON.stringify(written)}`
          }
          return Effect.try({
            try: () => fs.writeFileSync(fd, text),
            catch: (e) => fail(undefined, `cannot write: ${FileOps.describeErrno(e)}`)
          })
        }),
      commit: Effect.try({
        try: () => {
          fs.writeFileSync(fd, n === 0 ? "]\n" : "\n]\n")
          close()
          const refused = FileOps.notReplaceable(absolute)
          if (refused !== undefined) throw refused
          fs.renameSync(temp, absolute)
        },
        catch: (e) => {
          close()
          fs.rmSync(temp, { force: true })
          return fail(undefined, `cannot write: ${FileOps.describeErrno(e)}`)
        }
      }),
      abort: Effect.sync(() => {
        close()
        fs.rmSync(temp, { force: true })
      })
    })
  })
