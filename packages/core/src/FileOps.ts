/**
 * The file side of store and restore, kept synchronous on purpose: page-cache writes are CPU-bound and each async fs
 * call is a thread-pool round trip (PERFORMANCE.md), so local work runs in tight sections while database calls overlap.
 */
import { Data } from "effect"
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
  | { readonly _tag: "Other" }

export const inspect = (output: string): Existing => {
  try {
    // No exception for the common "absent" case: a batch inspects every output, and throwing costs more than the stat.
    const st = fs.statSync(output, { throwIfNoEntry: false })
    if (st === undefined) return { _tag: "Absent" }
    return st.isDirectory()
      ? { _tag: "Directory" }
      : st.isFile()
      ? { _tag: "File", size: st.size, mode: st.mode & 0o7777 }
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

/** A new file, never one that was there: a leftover (or a link planted at the fixed temp name) is removed, not written through. */
export const createNew = (file: string, mode: number): number => {
  try {
    return fs.openSync(file, exclusive, mode)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e
    fs.rmSync(file, { force: true })
    return fs.openSync(file, exclusive, mode)
  }
}

/**
 * A small input file's text (manifest, config, key, lock), refused unless it is a regular file of at most `maxBytes`:
 * a link to a device (/dev/zero) or a FIFO would otherwise be read without end, or hang the open.
 */
export const readBounded = (
  file: string,
  maxBytes: number,
  options: { readonly noFollow?: boolean; readonly strictUtf8?: boolean } = {}
): string => {
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
    return options.strictUtf8 === true ? Utf8.decode(buf.subarray(0, length)) : buf.subarray(0, length).toString("utf8")
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

/** Opens a new file for writing, creating its folders only when missing (one syscall per file in the usual case). */
const openCreating = (file: string, mode: number): number => {
  try {
    return createNew(file, mode)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code !== "ENOENT" && code !== "ENOTDIR") throw e
    makeFolders(path.dirname(file))
    return createNew(file, mode)
  }
}

/** Writes a file atomically: a temporary file in the same folder, then rename. The temp file never outlives a failure. */
export const writeAtomic = (output: string, write: (fd: number) => void, mode?: number): void => {
  const temp = tempFor(output)
  const fd = openCreating(temp, mode ?? 0o644)
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
