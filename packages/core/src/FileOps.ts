/**
 * The file side of store and restore, kept synchronous on purpose: page-cache writes are CPU-bound and each async fs
 * call is a thread-pool round trip (PERFORMANCE.md), so local work runs in tight sections while database calls overlap.
 */
import { Data } from "effect"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Hash from "./Hash.js"
import * as Utf8 from "./internal/Utf8.js"

export class OutputError extends Data.TaggedError("OutputError")<{
  readonly output: string
  readonly problem: "is-directory" | "exists" | "unwritable" | "escapes" | "not-regular" | "guarded"
  readonly detail: string
}> {
  override get message() {
    return `${this.output}: ${this.detail}`
  }
}

/**
 * An output kept inside a folder: the folder's real path (resolved once) and the output's real path below it. A
 * restore creates and checks the folders between them without following symbolic links, and checks again at rename.
 */
export interface Contained {
  readonly root: string
  readonly path: string
}

/** The longest file name, in bytes, that file systems take (NAME_MAX): a temporary's name must fit too. */
const maxNameBytes = 255
/** The longest path, in bytes, that Linux opens (PATH_MAX, its NUL included). */
const maxPathBytes = 4095

/**
 * Why no file can be made at `file` (absolute) however its folders are: a name in it longer than NAME_MAX, or the path
 * longer than PATH_MAX; `undefined` when it could be. A name of 86 characters or fewer fits in 255 UTF-8 bytes.
 */
export const tooLong = (file: string): string | undefined => {
  if (file.length > 85) {
    for (const name of file.split(path.sep)) {
      const bytes = name.length > 85 ? Buffer.byteLength(name) : 0
      if (bytes > maxNameBytes) {
        return `holds a name of ${bytes} bytes, more than the ${maxNameBytes} a file system takes`
      }
    }
  }
  const bytes = file.length > 1365 ? Buffer.byteLength(file) : 0
  return bytes > maxPathBytes ? `is ${bytes} bytes long, more than the ${maxPathBytes} Linux opens` : undefined
}

/**
 * A hidden temporary beside `file`: `.<name><suffix>`, fixed for a name (a rerun after a kill overwrites any
 * leftover). When that is longer than a name can be, it keeps the start of the name that fits, in whole characters,
 * and a hash of the whole name, and ends in `<suffix>~` (`.<start>~<hash><suffix>~`): fixed, distinct from another
 * long name's, and from every short name's temporary, which ends in `<suffix>`. Without that last `~`, a file named
 * `<start>~<hash>` had the same temporary as the long name, and a batch restoring both renamed one's content into the
 * other's place (an attack review; ext4 reused the inode, so the identity check passed).
 */
export const tempName = (file: string, suffix: string): string => {
  const name = path.basename(file)
  const plain = `.${name}${suffix}`
  if (Buffer.byteLength(plain) <= maxNameBytes) return path.join(path.dirname(file), plain)
  const hash = `~${Hash.sha256(name).slice(0, 16)}`
  const end = `${suffix}~`
  let room = maxNameBytes - Buffer.byteLength(`.${hash}${end}`)
  let start = ""
  for (const char of name) {
    room -= Buffer.byteLength(char)
    if (room < 0) break
    start += char
  }
  return path.join(path.dirname(file), `.${start}${hash}${end}`)
}

/** The temporary a restore (or any atomic write) writes before renaming: see `tempName`. */
export const tempFor = (output: string): string => tempName(output, ".codex-restore.tmp")

/**
 * A path that names a folder, not a file (it ends in `/`, `.` or `..`, or is empty): given as an output, `sub/` was
 * written as a file `sub`. No store records one, and no output may be one.
 */
export const namesNoFile = (p: string): boolean => /(^|\/)\.{0,2}$/.test(p)

/** What is wrong with a path `namesNoFile` holds, for its error. */
export const namesNoFileProblem = "names no file (it ends in '/', '.' or '..')"

/**
 * The mode a restored file gets: permission bits only (never setuid, setgid or sticky, whatever the archive says),
 * and never more than the restoring process's umask allows.
 */
export const restoredMode = (recorded: number, umask: number): number => recorded & 0o777 & ~umask

/** The process's umask, read in the main thread (worker threads cannot change it; reading it sets it back at once). */
export const currentUmask = (): number => process.umask()

export type Existing =
  | { readonly _tag: "Absent" }
  | { readonly _tag: "File"; readonly size: number; readonly mode: number }
  | { readonly _tag: "Directory" }
  | { readonly _tag: "Link" }
  | { readonly _tag: "Other" }

export const inspect = (output: string): Existing => {
  try {
    // No exception for the common "absent" case: a batch inspects every output, and throwing costs more than the stat.
    // The output itself, not what a link there leads to: a link to a file holding the content was called unchanged,
    // and stayed a link leading out of the restore's folder, to a file its owner could change later.
    const st = fs.lstatSync(output, { throwIfNoEntry: false })
    if (st === undefined) return { _tag: "Absent" }
    return st.isDirectory()
      ? { _tag: "Directory" }
      : st.isFile()
      ? { _tag: "File", size: st.size, mode: st.mode & 0o7777 }
      : st.isSymbolicLink()
      ? { _tag: "Link" }
      : { _tag: "Other" }
  } catch {
    return { _tag: "Absent" }
  }
}

export const describeErrno = (e: unknown): string => {
  const err = e as NodeJS.ErrnoException
  // Node's own messages (`ENOTDIR: not a directory, open '…'`) get plain words; ours already name what is wrong.
  if (typeof err.message === "string" && err.code !== undefined && !err.message.startsWith(`${err.code}:`)) {
    return err.message
  }
  switch (err.code) {
    case "EACCES":
    case "EPERM":
      return "permission denied"
    case "ENOTDIR":
      return "a parent of the output is not a directory"
    case "EISDIR":
      return "output is a directory"
    case "ENOSPC":
      return "no space left on device"
    case "EROFS":
      return "read-only file system"
    default:
      return err.message ?? String(e)
  }
}

const exclusive = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW

/** What `createTemp` writes: a file written whole (a stub, results), or a manifest written as a store runs. */
const temporarySuffixes = { file: ".codex.tmp", manifest: ".codex-manifest.tmp" } as const

/**
 * A new hidden temporary beside `file`, open for writing: `tempName` with a random part, so never a file that was
 * there, and nothing there is removed (a fixed name removed a user's `.a.txt.codex-restore.tmp` when `a.txt` got its
 * stub). A run killed mid-write leaves its temporary, which a store knows by its name (`isTemporary`) and passes over.
 */
export const createTemp = (
  file: string,
  kind: keyof typeof temporarySuffixes,
  mode: number
): { readonly temp: string; readonly fd: number } => {
  for (let tries = 0;; tries++) {
    const temp = tempName(file, `.${randomBytes(6).toString("hex")}${temporarySuffixes[kind]}`)
    try {
      return { temp, fd: fs.openSync(temp, exclusive, mode) }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST" || tries >= 8) throw e
    }
  }
}

const temporaryName = new RegExp(
  `^\\..*\\.[0-9a-f]{12}(?:${Object.values(temporarySuffixes).map((s) => s.replaceAll(".", "\\.")).join("|")})~?$`,
  "s"
)

/**
 * A name `createTemp` gives (`.<name>.<12 hex><suffix>`, or a long name's `...<suffix>~`): a run killed while writing
 * one leaves it, and the next store must not archive (and stub) it as a file of the tree.
 */
export const isTemporary = (name: string): boolean => temporaryName.test(name)

/** A path's real path: its folder's, links on the way resolved, and its own name (a link there is not followed). */
export const realPathOf = (file: string): string =>
  path.join(fs.realpathSync.native(path.dirname(file)), path.basename(file))

/** A walked file: its path, and what the walk saw there (identity, and its real path, links on the way resolved). */
export interface Walked {
  readonly file: string
  readonly real: string
  readonly dev: number
  readonly ino: number
}

/**
 * Opens a walked file for reading, or throws: never through a link or FIFO swapped in since the walk (`O_NOFOLLOW`,
 * `O_NONBLOCK`), and only the file walked, where it was walked. Another file at its path throws with code `ECHANGED`; a
 * folder on the way swapped for a link is refused, naming where it led (Linux tells where an open file really is,
 * `/proc/self/fd`): a store read and archived files outside its input that way (an attack review). Shipped to the
 * store's workers as source text, so it refers to nothing outside itself.
 */
export const openWalkedWith = (fs: typeof import("node:fs")) => {
  const flags = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK
  const procFds = fs.existsSync("/proc/self/fd")
  return (walked: Walked): number => {
    const fd = fs.openSync(walked.file, flags)
    try {
      const st = fs.fstatSync(fd)
      if (!st.isFile()) throw new Error("no longer a regular file")
      if (st.dev !== walked.dev || st.ino !== walked.ino) {
        throw Object.assign(new Error("replaced by another file since it was found"), { code: "ECHANGED" })
      }
      const at = procFds ? fs.readlinkSync(`/proc/self/fd/${fd}`) : walked.real
      if (at !== walked.real) {
        throw new Error(
          `no longer where it was found: a folder on the way was moved or swapped for a link (it is at ${at}); not read`
        )
      }
      return fd
    } catch (e) {
      fs.closeSync(fd)
      throw e
    }
  }
}

export const openWalked: (walked: Walked) => number = openWalkedWith(fs)

/** What a stub may replace: the walked file, as it was before it was read (a change since moves one of these). */
export interface Unchanged extends Walked {
  readonly size: number
  readonly mtimeMs: number
  /** Moved by any write, and by setting the times back (`touch -r`, `rsync -t`): an edit that kept size and mtime. */
  readonly ctimeMs: number
  /** Its links: one removed (a hard link's stub, written first) moves the ctime too, and is no edit. */
  readonly nlink: number
}

const procFds = process.platform === "linux" && fs.existsSync("/proc/self/fd")

/** Where an open file really is, in its bytes (a name that is not UTF-8 read as text is another); else `undefined`. */
const placeOf = (fd: number): Buffer | undefined => {
  if (!procFds) return undefined
  try {
    return fs.readlinkSync(`/proc/self/fd/${fd}`, { encoding: "buffer" })
  } catch {
    return undefined
  }
}
/** Linux's `O_PATH` (not in Node's constants): a folder held to work in needs no read permission, as a path did not. */
const pathOnly = 0o10000000

/**
 * Replaces a walked file by `content` (a temporary, then a rename), only if it is still the file walked, unchanged, in
 * the folder walked: why not, otherwise. On Linux the folder is held open, checked to be really where the walk was,
 * and every step goes through it (`/proc/self/fd/N/name`): a folder swapped for a link mid-run cannot lead the
 * replacement outside, as it did when the steps went by path (an attack review: files outside a store became stubs).
 */
export const replaceUnchanged = (
  walked: Unchanged,
  content: Uint8Array,
  mode: number
): string | undefined => {
  const dir = path.dirname(walked.file)
  const fd = procFds ? fs.openSync(dir, pathOnly | fs.constants.O_DIRECTORY) : undefined
  try {
    const folder = fd === undefined ? dir : `/proc/self/fd/${fd}`
    if (fd !== undefined) {
      const at = fs.readlinkSync(folder)
      if (at !== path.dirname(walked.real)) {
        return `its folder was moved or swapped for a link since it was read (it is at ${at}); left as it is`
      }
    }
    const file = path.join(folder, path.basename(walked.file))
    const st = fs.lstatSync(file, { throwIfNoEntry: false })
    if (
      st === undefined || !st.isFile() || st.dev !== walked.dev || st.ino !== walked.ino || st.size !== walked.size ||
      st.mtimeMs !== walked.mtimeMs || (st.ctimeMs !== walked.ctimeMs && st.nlink >= walked.nlink)
    ) return "the file changed after it was archived; left as it is"
    writeAtomic(file, (out) => writeAll(out, content), mode)
    return undefined
  } finally {
    if (fd !== undefined) fs.closeSync(fd)
  }
}

/**
 * A small input file's text (manifest, config, key, lock), refused unless it is a regular file of at most `maxBytes`:
 * a link to a device (/dev/zero) or a FIFO would otherwise be read without end, or hang the open.
 */
/** How `readBounded` reads: through no link at the name, and refusing bytes that are not UTF-8. */
export interface ReadOptions {
  readonly noFollow?: boolean
  readonly strictUtf8?: boolean
}

export const readBounded = (file: string, maxBytes: number, options: ReadOptions = {}): string =>
  boundedRead(file, maxBytes, options, false).text

/**
 * `readBounded`, and where the file read really is, in bytes (`/proc/self/fd`; `undefined` where Linux does not say):
 * the very file read, not the one a path names a moment later.
 */
export const readBoundedWhere = (
  file: string,
  maxBytes: number,
  options: ReadOptions = {}
): { readonly text: string; readonly real: Buffer | undefined } => boundedRead(file, maxBytes, options, true)

const boundedRead = (
  file: string,
  maxBytes: number,
  options: ReadOptions,
  withReal: boolean
): { readonly text: string; readonly real: Buffer | undefined } => {
  const flags = fs.constants.O_RDONLY | fs.constants.O_NONBLOCK |
    (options.noFollow === true ? fs.constants.O_NOFOLLOW : 0)
  const fd = fs.openSync(file, flags)
  try {
    const st = fs.fstatSync(fd)
    if (!st.isFile()) throw new Error(`${file} is not a regular file`)
    if (st.size > maxBytes) throw new Error(`${file} is larger than ${maxBytes} bytes`)
    // One byte more than its size: a file that grows while it is read is refused, never read on.
    const buf = Buffer.allocUnsafe(st.size + 1)
    let length = 0
    for (let n = 1; n > 0 && length < buf.length;) length += n = fs.readSync(fd, buf, length, buf.length - length, null)
    if (length > st.size) throw new Error(`${file} changed while it was read`)
    // Strict: bytes that are not UTF-8 throw `Utf8.NotUtf8` rather than read back as U+FFFD.
    const text = options.strictUtf8 === true
      ? Utf8.decode(buf.subarray(0, length))
      : buf.subarray(0, length).toString("utf8")
    return { text, real: withReal ? placeOf(fd) : undefined }
  } finally {
    fs.closeSync(fd)
  }
}

/**
 * `mkdir -p` over the given modules; when it fails for something in the way, the error names it (`ENOENT … mkdir`
 * says neither that a link on the way is dangling, nor which parent is a file), with the errno's code for it.
 * Shipped to the restore workers as source text, so it refers to nothing outside itself.
 */
export const makeFoldersWith = (fs: typeof import("node:fs"), path: typeof import("node:path")) => (dir: string) => {
  try {
    fs.mkdirSync(dir, { recursive: true })
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code !== "ENOENT" && code !== "ENOTDIR" && code !== "EEXIST") throw e
    for (let p = dir; p !== path.dirname(p); p = path.dirname(p)) {
      let st: import("node:fs").Stats | undefined
      try {
        st = fs.lstatSync(p, { throwIfNoEntry: false })
      } catch {
        continue // under a file (ENOTDIR): what is in the way is further up
      }
      if (st === undefined) continue
      if (st.isSymbolicLink() && !fs.existsSync(p)) {
        const why = `${p} is a symbolic link to ${fs.readlinkSync(p)}, which does not exist`
        throw Object.assign(new Error(why), { code: "ENOENT" })
      }
      if (!fs.statSync(p).isDirectory()) throw Object.assign(new Error(`${p} is not a folder`), { code: "ENOTDIR" })
      break
    }
    throw e
  }
}

/** `mkdir -p dir`, naming what is in the way when it cannot. */
export const makeFolders: (dir: string) => void = makeFoldersWith(fs, path)

/**
 * Appends all of `bytes` to the file open at `fd` (`O_APPEND`, its writers excluded by a lock), or nothing: a write
 * that fails partway (a full disk) is cut back off, so no half record is left for the next append to build on.
 */
export const appendWhole = (fd: number, bytes: Uint8Array, write: typeof fs.writeSync = fs.writeSync): void => {
  const before = fs.fstatSync(fd).size
  try {
    let offset = 0
    while (offset < bytes.length) offset += write(fd, bytes, offset)
  } catch (e) {
    try {
      fs.ftruncateSync(fd, before)
    } catch (undo) {
      const why = `${(e as Error).message}; the part written could not be cut back off: ${(undo as Error).message}`
      throw Object.assign(new Error(why), { code: (e as NodeJS.ErrnoException).code })
    }
    throw e
  }
}

/** A temporary beside `file`, open for writing, its folders made only when missing (one syscall in the usual case). */
const openCreating = (file: string, mode: number) => {
  try {
    return createTemp(file, "file", mode)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code !== "ENOENT" && code !== "ENOTDIR") throw e
    makeFolders(path.dirname(file))
    return createTemp(file, "file", mode)
  }
}

/** Writes a file atomically: a temporary file in the same folder, then rename. The temp file never outlives a failure. */
export const writeAtomic = (output: string, write: (fd: number) => void, mode?: number): void => {
  const { fd, temp } = openCreating(output, mode ?? 0o644)
  try {
    write(fd)
    if (mode !== undefined) fs.fchmodSync(fd, mode)
  } catch (e) {
    fs.closeSync(fd)
    fs.rmSync(temp, { force: true })
    throw e
  }
  fs.closeSync(fd)
  try {
    fs.renameSync(temp, output)
  } catch (e) {
    fs.rmSync(temp, { force: true })
    throw e
  }
}

const writeAll = (fd: number, bytes: Uint8Array): void => {
  let offset = 0
  while (offset < bytes.length) offset += fs.writeSync(fd, bytes, offset, bytes.length - offset)
}

/** What a non-regular file is, for an error that names it. */
const kindOf = (st: fs.Stats): string =>
  st.isSymbolicLink()
    ? "a symbolic link"
    : st.isDirectory()
    ? "a directory"
    : st.isFIFO()
    ? "a FIFO"
    : st.isCharacterDevice() || st.isBlockDevice()
    ? "a device"
    : st.isSocket()
    ? "a socket"
    : "not a regular file"

/**
 * What an output file option (`--results`, `--metrics-out`, `--manifest-out`) may replace: nothing, or a regular file.
 * A rename over a symlink, device, FIFO or folder would silently turn it into a regular file.
 */
export const notReplaceable = (output: string): OutputError | undefined => {
  const st = fs.lstatSync(output, { throwIfNoEntry: false })
  if (st === undefined || st.isFile()) return undefined
  const detail = `exists and is ${kindOf(st)}; refusing to replace it with a file`
  return new OutputError({ output, problem: "not-regular", detail })
}

/** Why an existing lock file cannot be one this tool took (not a regular file), or `undefined` when it can be. */
export const notLockFile = (lock: string): string | undefined => {
  const st = fs.lstatSync(lock, { throwIfNoEntry: false })
  if (st === undefined || st.isFile()) return undefined
  return `lock file ${lock} is ${kindOf(st)}, not a lock this tool took; remove it`
}

/** Writes text or bytes to `output` atomically (results files, manifests, stubs); never replaces a non-regular file. */
export const writeFileAtomic = (output: string, content: string | Uint8Array, mode?: number): void => {
  const refused = notReplaceable(output)
  if (refused !== undefined) throw refused
  writeAtomic(output, (fd) => writeAll(fd, typeof content === "string" ? Buffer.from(content, "utf8") : content), mode)
}
