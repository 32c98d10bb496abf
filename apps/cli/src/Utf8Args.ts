/**
 * Arguments, this tool's variables and the working folder whose bytes are not UTF-8. Node reads such bytes as U+FFFD,
 * another name: `restore ID out\xff.txt` restored to `out\u{FFFD}.txt` and said it had; run from a folder `cw\xff`, a
 * relative OUTPUT went to a new folder `cw\u{FFFD}`. The bytes as given are in `/proc/self/cmdline`, `/proc/self/environ`
 * and `/proc/self/cwd` (Linux); where they cannot be read, a value holding U+FFFD is refused.
 */
import { ConfigSchema, Redact, Walk } from "@codex-archive/core"
import * as fs from "node:fs"

/** The NUL-separated entries of a `/proc/self` file, or undefined where there is none to read. */
const entries = (file: string): ReadonlyArray<Buffer> | undefined => {
  let bytes: Buffer
  try {
    bytes = fs.readFileSync(file)
  } catch {
    return undefined
  }
  const out: Array<Buffer> = []
  for (let from = 0; from < bytes.length;) {
    const end = bytes.indexOf(0, from)
    out.push(bytes.subarray(from, end < 0 ? bytes.length : end))
    from = end < 0 ? bytes.length : end + 1
  }
  return out
}

const why = "is not UTF-8, and Node.js would read it as another name; use a UTF-8 name"
const whyFolder = "would be read under another folder by Node.js; run from a folder whose path is UTF-8"
const whyValue = "is not UTF-8, and Node.js would read it as another value; set it in UTF-8"

/**
 * The variables this tool reads: another program's `CODEX_` variable is not ours to refuse. `TMPDIR` (else `TMP`, else
 * `TEMP`, as Node's `os.tmpdir()` reads them) is where `list`, `store` and `batch-restore` keep their temporary files.
 */
const ours: ReadonlySet<string> = new Set([
  ...ConfigSchema.fields.map((f) => f.env),
  "CODEX_ARCHIVE_CONFIG",
  "CODEX_ACTOR",
  "TMPDIR",
  "TMP",
  "TEMP"
])

/** The working folder as Node reads it, and as its bytes are (Linux); relative paths resolve against it. */
export interface WorkingFolder {
  readonly path: () => string | undefined
  readonly bytes: () => Buffer | undefined
}
export const workingFolder: WorkingFolder = {
  path: () => {
    try {
      return process.cwd()
    } catch {
      // removed from under us: nothing relative can be resolved, and the command says so itself
      return undefined
    }
  },
  bytes: () => {
    try {
      return fs.readlinkSync("/proc/self/cwd", { encoding: "buffer" })
    } catch {
      return undefined
    }
  }
}

/**
 * The one-line reason to refuse the command line, or undefined: the first argument (after the script) or variable of
 * this tool's that is not UTF-8. Only values holding U+FFFD are looked at, so a command line of UTF-8 costs nothing.
 * An argument is shown by its bytes with a URL's credentials redacted; a variable by its name only (it may be a key).
 */
export const refusal = (
  argv: ReadonlyArray<string>,
  env: NodeJS.ProcessEnv,
  read: (file: string) => ReadonlyArray<Buffer> | undefined = entries,
  cwd: WorkingFolder = workingFolder
): string | undefined => {
  const args = argv.slice(2)
  if (args.some((a) => a.includes("\uFFFD"))) {
    const raw = read("/proc/self/cmdline")
    // The arguments are the last entries: Node's own options come before the script.
    const tail = raw === undefined || raw.length < args.length ? undefined : raw.slice(raw.length - args.length)
    for (const [i, arg] of args.entries()) {
      if (!arg.includes("\uFFFD")) continue
      const bytes = tail?.[i]
      if (bytes === undefined) {
        return `argument '${
          Redact.text(Walk.showBytes(Buffer.from(arg)))
        }' holds U+FFFD: if its bytes are not UTF-8, it ${why}`
      }
      if (!bytes.equals(Buffer.from(arg))) return `argument '${Redact.text(Walk.showBytes(bytes))}' ${why}`
    }
  }
  const folder = cwd.path()
  if (folder?.includes("\uFFFD") === true) {
    const bytes = cwd.bytes()
    if (bytes === undefined) {
      return `the current folder '${
        Walk.showBytes(Buffer.from(folder))
      }' holds U+FFFD: if its bytes are not UTF-8, relative paths ${whyFolder}`
    }
    if (!bytes.equals(Buffer.from(folder))) {
      return `the current folder '${Walk.showBytes(bytes)}' is not UTF-8: relative paths ${whyFolder}`
    }
  }
  const names = [...ours].filter((name) => env[name]?.includes("\uFFFD") === true)
  if (names.length === 0) return undefined
  const raw = read("/proc/self/environ")
  for (const name of names) {
    const prefix = Buffer.from(`${name}=`)
    const bytes = raw?.find((e) => e.subarray(0, prefix.length).equals(prefix))?.subarray(prefix.length)
    if (bytes === undefined) return `${name} holds U+FFFD: if its bytes are not UTF-8, it ${whyValue}`
    if (!bytes.equals(Buffer.from(env[name]!))) return `${name} ${whyValue}`
  }
  return undefined
}
