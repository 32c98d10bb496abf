/**
 * The whole configuration document (spec §4, "Design B" keys) and how it is composed from its sources:
 * defaults < TOML file < `CODEX_ARCHIVE_*` environment < command-line flags. Every value remembers where it came
 * from. A file, URL or environment shared with the original tool opens the same archive as it does there; a value
 * the original tolerates (falls back, clamps) is used as it would use it, with a warning naming the key, the source
 * and the value used; strict mode makes those warnings errors. Any other invalid value is an error naming the key,
 * the source and what was expected. The backend URL is `Redacted` from the moment it is read. Nothing here reads
 * `process.env`: the caller passes the environment.
 */
import { Context, Data, Effect, Either, ParseResult, Redacted, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { parse as parseToml } from "smol-toml"
import * as ConfigSchema from "./ConfigSchema.js"
import {
  backendAliases,
  type BackendName,
  backendNames,
  fieldByKey,
  fields,
  type LogFormat,
  type LogLevel,
  show
} from "./ConfigSchema.js"
import * as FileOps from "./FileOps.js"
import * as Utf8 from "./internal/Utf8.js"
import * as Redact from "./Redact.js"

export {
  backendAliases,
  type BackendName,
  backendNames,
  defaultUrl,
  fields,
  type LogFormat,
  type LogLevel
} from "./ConfigSchema.js"
/** Every accepted spelling of a backend name (any letter case), for messages that list them. */
export const backendSpellings: ReadonlyArray<string> = ["sqlite", "postgres", "postgresql", "mariadb", "mysql"]

/** A backend named in any accepted spelling, any case (`SQLite`, `PostgreSQL`, `mysql`); `undefined` otherwise. */
export const backendNameOf = (text: string): BackendName | undefined => {
  const lower = text.trim().toLowerCase()
  const name = backendAliases[lower] ?? lower
  return backendNames.find((n) => n === name)
}

export interface ArchiveConfig {
  readonly backend: {
    readonly backend: BackendName
    readonly url: Redacted.Redacted<string>
    /** The SQLite file the URL names, read as the original tool reads it; null for a server backend. */
    readonly path: string | null
  }
  readonly logging: { readonly level: LogLevel; readonly format: LogFormat; readonly evidence_file: string | null }
  readonly retry: {
    readonly enabled: boolean
    readonly max_attempts: number
    readonly initial_delay: number
    readonly max_delay: number
    readonly multiplier: number
    readonly jitter: number
    readonly seed: number | null
  }
  readonly batch: {
    readonly concurrent: number
    readonly progress_interval: number
    readonly results_path: string | null
  }
  readonly performance: { readonly enabled: boolean; readonly emit_to_evidence: boolean }
  readonly store: { readonly inline_limit: number }
  readonly evidence: {
    readonly dir: string
    /** Where the HMAC key of the evidence chain was read from, if from a file. */
    readonly hmac_key_file: string | null
    /** The key itself (`CODEX_EVIDENCE_HMAC_KEY`, else the file's content): never shown, never logged. */
    readonly hmac_key: Redacted.Redacted<string> | null
  }
}

/** The service through which every layer reads the composed configuration. */
export class ArchiveConfigTag
  extends Context.Tag("@codex-archive/core/ArchiveConfig")<ArchiveConfigTag, ArchiveConfig>()
{}

/** Where a value came from, as shown by `config-show --origin` and in error messages. */
export type Origin =
  | { readonly _tag: "Default" }
  | { readonly _tag: "File"; readonly file: string; readonly line: number | undefined }
  | { readonly _tag: "Env"; readonly variable: string }
  | { readonly _tag: "Flag"; readonly flag: string }
  | { readonly _tag: "Inferred"; readonly from: string }

export const showOrigin = (origin: Origin): string => {
  switch (origin._tag) {
    case "Default":
      return "default"
    case "File":
      return origin.line === undefined ? origin.file : `${origin.file}:${origin.line}`
    case "Env":
      return `env ${origin.variable}`
    case "Flag":
      return `flag ${origin.flag}`
    case "Inferred":
      return `inferred from ${origin.from}`
  }
}

export class ConfigError extends Data.TaggedError("ConfigError")<{
  readonly key: string
  readonly origin: string
  readonly problem: string
}> {
  override get message() {
    return `invalid configuration: ${this.key} (${this.origin}): ${this.problem}`
  }
}

/** A value used other than as written (as the original tool would use it), or a key ignored: one line, once. */
export class ConfigWarning extends Data.Class<{
  readonly key: string
  /** The value as written, credentials redacted. */
  readonly value: string
  readonly origin: string
  readonly why: string
  /** The value used instead, shown; undefined when the key is ignored. */
  readonly using: string | undefined
}> {
  get message() {
    return `${this.key} = ${this.value} from ${this.origin}: ${this.why}; ${
      this.using === undefined ? "ignored" : `using ${this.using}`
    }`
  }
  /** What strict mode makes of it: the error it was before warnings existed. */
  toError(): ConfigError {
    const instead = this.using === undefined ? "it would be ignored" : `${this.using} would be used`
    return new ConfigError({
      key: this.key,
      origin: this.origin,
      problem: `got ${this.value}: ${this.why} (strict mode; without it ${instead})`
    })
  }
}

/** One layer of raw values, keyed `section.key`, all from one origin kind. */
export interface Source {
  readonly values: ReadonlyMap<string, { readonly value: unknown; readonly origin: Origin }>
  /** Relative paths in this source resolve against this folder. */
  readonly baseDir: string
}

export interface Loaded {
  readonly config: ArchiveConfig
  readonly origins: ReadonlyMap<string, Origin>
  /** Each applied once: values used other than as written, keys ignored. None survive strict mode. */
  readonly warnings: ReadonlyArray<ConfigWarning>
  /** `--strict`, `CODEX_ARCHIVE_STRICT` or `strict = true` in the file. */
  readonly strict: boolean
  readonly file: string | undefined
}

/**
 * One source's value for one key, decoded by the key's schema: a ParseError becomes the error naming the key, the
 * source and what was expected; a value the original tool tolerates is used, with a warning naming what is used.
 */
const decodeValue = (
  field: ConfigSchema.Field,
  value: unknown,
  origin: Origin,
  place: ConfigSchema.Place
): Either.Either<{ readonly value: unknown; readonly warning?: ConfigWarning }, ConfigError> =>
  Either.match(Schema.decodeUnknownEither(ConfigSchema.schemaOf(field, place))(value), {
    onLeft: (error) => {
      const problem = ParseResult.TreeFormatter.formatErrorSync(error)
      // Not yet registered (the file is still being read): its secrets, even of a malformed URL, go here.
      return Either.left(
        new ConfigError({
          key: field.key,
          origin: showOrigin(origin),
          problem: field.type === ConfigSchema.url
            ? Redact.secrets(problem, Redact.secretsOf(typeof value === "string" ? value : ""))
            : problem
        })
      )
    },
    onRight: (decoded) =>
      Either.right(
        decoded.tolerated === undefined ? { value: decoded.value } : {
          value: decoded.value,
          warning: new ConfigWarning({
            key: field.key,
            value: showValue(field.key, value),
            origin: showOrigin(origin),
            why: decoded.tolerated,
            using: show(decoded.value)
          })
        }
      )
  })

/** `postgres…` → postgres; `mariadb…`/`mysql…` → mariadb; `sqlite…` → sqlite (spec §2.4). */
export const inferBackend = (url: string): BackendName | undefined => {
  const lower = url.trim().toLowerCase()
  if (lower.startsWith("postgres")) return "postgres"
  if (lower.startsWith("mariadb") || lower.startsWith("mysql")) return "mariadb"
  if (lower.startsWith("sqlite:")) return "sqlite"
  return undefined
}

/** The SQLite URLs `sqlitePath` reads, as an error says them. */
const sqliteForms = "sqlite URLs take a path only: sqlite:///ABSOLUTE, sqlite:///./RELATIVE, " +
  "sqlite://RELATIVE or sqlite:RELATIVE"

/** `x://...`: a URL, never a file name, whatever its scheme. */
const hasScheme = (url: string): boolean => /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(url)

/**
 * The SQLite file a URL names, exactly as the original tool reads it (its `_sqlite_path`, spec §2.4): for a `sqlite:`
 * URL, host and path joined (`sqlite:///./a` → `./a`, `sqlite:///a` → `/a`, `sqlite:////a` → `/a`,
 * `sqlite://a/b` → `a/b`, query and fragment dropped); anything else is a path as written. Then `~` is expanded and
 * the path resolved against `cwd`, symlinks followed as far as the path exists (Python's `Path.resolve()`).
 */
export const sqlitePath = (url: string, cwd: string): string => {
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:/.exec(url)?.[0]
  let file = url
  if (scheme !== undefined && scheme.toLowerCase() === "sqlite:") {
    const rest = url.slice(scheme.length).split(/[?#]/)[0]!
    const full = rest.startsWith("//") ? rest.slice(2) : rest
    file = full === "" ? url : full.startsWith("/./") ? full.slice(1) : full
  }
  if (file === "~" || file.startsWith("~/")) file = os.homedir() + file.slice(1)
  return resolveLikePython(path.isAbsolute(file) ? file : `${cwd}/${file}`)
}

/** Python's non-strict `os.path.realpath`: `..` after a symlink leaves the link's target, as opening the path would. */
const resolveLikePython = (absolute: string): string => {
  let parts = absolute.split("/").filter((p) => p !== "" && p !== ".")
  let resolved = "/"
  for (let hops = 0; parts.length > 0;) {
    const part = parts.shift()!
    if (part === "..") {
      resolved = path.dirname(resolved)
      continue
    }
    const next = path.join(resolved, part)
    let target: string | undefined
    try {
      if (hops < 40 && fs.lstatSync(next).isSymbolicLink()) target = fs.readlinkSync(next)
    } catch {
      // Missing from here on: the rest is taken as written.
    }
    if (target === undefined) {
      resolved = next
      continue
    }
    hops++
    if (path.isAbsolute(target)) resolved = "/"
    parts = [...target.split("/").filter((p) => p !== "" && p !== "."), ...parts]
  }
  return resolved
}

/** How this tool read a SQLite URL before it followed the original (relative to the config file; `sqlite:///a` = `./a`). */
const earlierReading = (url: string, baseDir: string): string | undefined => {
  if (!/^sqlite:/i.test(url)) return undefined
  const rest = url.slice("sqlite:".length)
  const file = rest.startsWith("///") ? rest.slice(3) : rest.startsWith("//") ? rest.slice(2) : rest
  if (file === ":memory:") return undefined
  return path.resolve(baseDir, file.startsWith("~/") ? path.join(os.homedir(), file.slice(2)) : file)
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/** Finds the line of `key` inside `[section]` of a TOML text, so errors can say `file:line`. */
const lineOf = (text: string, section: string, key: string): number | undefined => {
  const [s, k] = [escapeRegExp(section), escapeRegExp(key)]
  let current = ""
  const lines = text.split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim()
    const header = /^\[\s*([^\]]+?)\s*\]/.exec(line)
    if (header) current = header[1]!
    else if (current === section && new RegExp(`^"?${k}"?\\s*=`).test(line)) return i + 1
    else if (current === "" && new RegExp(`^${s}\\s*\\.\\s*${k}\\s*=`).test(line)) return i + 1
  }
  return undefined
}

/** Reads one TOML file; `chosenBy` (e.g. `flag --config-file`) says where its path came from, for errors. */
export const fromToml = (
  file: string,
  chosenBy?: string
): Effect.Effect<{ source: Source; warnings: ReadonlyArray<ConfigWarning> }, ConfigError> =>
  Effect.gen(function*() {
    const absolute = path.resolve(file)
    const text = yield* Effect.try({
      try: () => FileOps.readBounded(absolute, 16 * 1024 * 1024, { strictUtf8: true }),
      catch: (e) =>
        new ConfigError({
          key: "config file",
          origin: chosenBy ?? absolute,
          problem: (e as NodeJS.ErrnoException).code === "ENOENT"
            ? `${absolute} does not exist`
            : e instanceof Utf8.NotUtf8
            // Not the byte: it may be a key's, or a password's.
            ? `${absolute} is not UTF-8 text at line ${e.line} (offset ${e.offset})`
            : `${absolute} cannot be read: ${(e as Error).message}`
        })
    })
    const doc = yield* Effect.try({
      try: () => parseToml(text) as Record<string, unknown>,
      catch: (e) => {
        // smol-toml's TomlError knows where: name it `file:line:column` as compilers do.
        const at = e as { line?: unknown; column?: unknown }
        const where = typeof at.line === "number" && typeof at.column === "number" ? `:${at.line}:${at.column}` : ""
        const what = (e as Error).message.split("\n")[0]!.replace(/^Invalid TOML document: /, "")
        const problem = `not valid TOML: ${what}`
        return new ConfigError({ key: "config file", origin: `${absolute}${where}`, problem })
      }
    })
    const values = new Map<string, { value: unknown; origin: Origin }>()
    const warnings: Array<ConfigWarning> = []
    // The original tool ignores keys it does not know; so do we, saying so.
    const unknown = (key: string, value: unknown, line: number | undefined) =>
      warnings.push(
        new ConfigWarning({
          key,
          value: show(value),
          origin: showOrigin({ _tag: "File", file: absolute, line }),
          why: "not a known key",
          using: undefined
        })
      )
    for (const [section, body] of Object.entries(doc)) {
      if (body === null || typeof body !== "object" || Array.isArray(body) || body instanceof Date) {
        // A top-level key of ours (`strict`), else unknown.
        const line = lineOf(text, "", section)
        if (fieldByKey.has(section)) {
          values.set(section, { value: body, origin: { _tag: "File", file: absolute, line } })
        } else unknown(section, body, line)
        continue
      }
      for (const [key, value] of Object.entries(body as Record<string, unknown>)) {
        const full = `${section}.${key}`
        const line = lineOf(text, section, key)
        if (!fieldByKey.has(full)) {
          unknown(full, value, line)
          continue
        }
        values.set(full, { value, origin: { _tag: "File", file: absolute, line } })
      }
    }
    return { source: { values, baseDir: path.dirname(absolute) }, warnings }
  })

export const fromEnv = (env: Readonly<Record<string, string | undefined>>, cwd: string): Source => {
  const values = new Map<string, { value: unknown; origin: Origin }>()
  for (const field of fields) {
    const value = env[field.env]
    // Only variables that are set and non-empty count (spec §4.1).
    if (value !== undefined && value.trim() !== "") {
      values.set(field.key, { value, origin: { _tag: "Env", variable: field.env } })
    }
  }
  return { values, baseDir: cwd }
}

/** Flag values keyed `section.key`, each naming the flag that set it. */
export const fromFlags = (
  flags: ReadonlyArray<readonly [key: string, flag: string, value: unknown]>,
  cwd: string
): Source => {
  const values = new Map<string, { value: unknown; origin: Origin }>()
  for (const [key, flag, value] of flags) {
    if (value !== undefined) values.set(key, { value, origin: { _tag: "Flag", flag } })
  }
  return { values, baseDir: cwd }
}

/** How a value is shown in a warning: a URL without its credentials. */
const showValue = (key: string, value: unknown): string =>
  key === "backend.url" && typeof value === "string" ? show(Redact.url(value) || value) : show(value)

/** Composes sources, lowest precedence first, into a validated configuration. */
export const compose = (
  sources: ReadonlyArray<Source>,
  cwd: string
): Effect.Effect<Omit<Loaded, "file">, ConfigError> =>
  Effect.gen(function*() {
    const values = new Map<string, unknown>()
    const origins = new Map<string, Origin>()
    const rank = new Map<string, number>()
    // Per key, the warning of the value that won: one overridden by a higher source is not used, so not reported.
    const warnings = new Map<string, ConfigWarning>()
    for (const field of fields) {
      // A default is a value like any other (a relative path resolves against the working folder).
      const place = { baseDir: cwd, cwd, fromFile: false, lenient: false }
      values.set(
        field.key,
        field.default === null
          ? null
          : Schema.decodeUnknownSync(ConfigSchema.schemaOf(field, place))(field.default).value
      )
      origins.set(field.key, { _tag: "Default" })
      rank.set(field.key, -1)
    }
    for (const [index, source] of sources.entries()) {
      for (const [key, { origin, value }] of source.values) {
        const field = fieldByKey.get(key)!
        const lenient = (origin._tag === "File" || origin._tag === "Env") && field.ours !== true
        const place = { baseDir: source.baseDir, cwd, fromFile: origin._tag === "File", lenient }
        const decoded = yield* decodeValue(field, value, origin, place)
        values.set(key, decoded.value)
        origins.set(key, origin)
        rank.set(key, index)
        warnings.delete(key)
        if (decoded.warning) warnings.set(key, decoded.warning)
      }
    }
    const archive = yield* resolveArchive(values, origins, rank, sources, cwd)
    if (archive.warning) warnings.set("backend.url", archive.warning)
    const get = <A>(key: string) => values.get(key) as A
    const config: ArchiveConfig = {
      backend: { backend: archive.backend, url: Redacted.make(archive.url), path: archive.path },
      logging: {
        level: get("logging.level"),
        format: get("logging.format"),
        evidence_file: get("logging.evidence_file")
      },
      retry: {
        enabled: get("retry.enabled"),
        max_attempts: get("retry.max_attempts"),
        initial_delay: get("retry.initial_delay"),
        max_delay: get("retry.max_delay"),
        multiplier: get("retry.multiplier"),
        jitter: get("retry.jitter"),
        seed: get("retry.seed")
      },
      batch: {
        concurrent: get("batch.concurrent"),
        progress_interval: get("batch.progress_interval"),
        results_path: get("batch.results_path")
      },
      performance: { enabled: get("performance.enabled"), emit_to_evidence: get("performance.emit_to_evidence") },
      store: { inline_limit: get("store.inline_limit") },
      evidence: {
        dir: get("evidence.dir"),
        hmac_key_file: get("evidence.hmac_key_file"),
        // Of a key and a key file, the one from the higher-precedence source wins (`--key-file` beats the env key).
        hmac_key: yield* hmacKey(
          rank.get("evidence.hmac_key")! >= rank.get("evidence.hmac_key_file")! ? get("evidence.hmac_key") : null,
          get("evidence.hmac_key_file"),
          origins.get("evidence.hmac_key_file")!
        )
      }
    }
    return { config, origins, warnings: [...warnings.values()], strict: get<boolean>("strict") }
  })

/**
 * Which archive the backend and URL name, as the original tool reads them (spec §2.4, §4.1): only a URL from the
 * environment (or our flags) infers the backend; a file's URL keeps the file's (or the default) backend; a SQLite
 * path resolves against the working folder. Where the original would read a server URL as a file name, we refuse.
 */
const resolveArchive = (
  values: Map<string, unknown>,
  origins: Map<string, Origin>,
  rank: ReadonlyMap<string, number>,
  sources: ReadonlyArray<Source>,
  cwd: string
) =>
  Effect.gen(function*() {
    const url = values.get("backend.url") as string
    const urlOrigin = origins.get("backend.url")!
    const urlWhere = showOrigin(urlOrigin)
    const redacted = Redact.url(url) || url
    const notAUrl = (extra = "") =>
      new ConfigError({
        key: "backend.url",
        origin: urlWhere,
        problem: `got '${redacted}', expected ${ConfigSchema.urlExpected}${extra}`
      })
    // Not yet registered (the file is still being read): a malformed URL's secrets are scrubbed here.
    const scrubbed = (error: ConfigError) =>
      url.includes("@") || hasScheme(url)
        ? new ConfigError({ ...error, problem: Redact.secrets(error.problem, Redact.secretsOf(url)) })
        : error
    let backend = values.get("backend.backend") as BackendName
    if (
      rank.get("backend.backend")! < rank.get("backend.url")! && (urlOrigin._tag === "Env" || urlOrigin._tag === "Flag")
    ) {
      // A bare path names a SQLite file; only the original's environment refuses to infer that (spec §2.4).
      const inferred = inferBackend(url) ?? (urlOrigin._tag === "Flag" && !hasScheme(url) ? "sqlite" : undefined)
      if (inferred === undefined) {
        return yield* scrubbed(notAUrl(
          hasScheme(url)
            ? ""
            : " (the backend cannot be inferred from a path, nor can the original tool: set CODEX_ARCHIVE_BACKEND=sqlite)"
        ))
      }
      backend = inferred
      origins.set("backend.backend", { _tag: "Inferred", from: "backend.url" })
    }
    const backendWhere = `${
      backend === "sqlite" && origins.get("backend.backend")!._tag === "Default"
        ? "the default"
        : showOrigin(origins.get("backend.backend")!)
    }`
    if (backend !== "sqlite") {
      const named = inferBackend(url)
      if (named === undefined) {
        return yield* scrubbed(notAUrl())
      }
      if (named !== backend) {
        return yield* new ConfigError({
          key: "backend.backend",
          origin: showOrigin(origins.get("backend.backend")!),
          problem: `'${backend}' does not match the ${named} URL in backend.url (${urlWhere})`
        })
      }
      return { backend, url, path: null, warning: undefined }
    }
    // A user part without a scheme (`u:pw@h/db`) is a URL gone wrong, though the original would make a file of it.
    if (!/^sqlite:/i.test(url) && !hasScheme(url) && url.includes("@")) {
      return yield* scrubbed(notAUrl(" (a user part needs a scheme)"))
    }
    if (!/^sqlite:/i.test(url) && hasScheme(url)) {
      const named = inferBackend(url)
      if (named === undefined) return yield* scrubbed(notAUrl())
      // The original would create a SQLite file named after the URL: never what was meant.
      return yield* new ConfigError({
        key: "backend.url",
        origin: urlWhere,
        problem:
          `got '${redacted}', a ${named} URL, but backend.backend is 'sqlite' (${backendWhere}), and the original tool would read it as a SQLite file name: set backend.backend = "${named}" beside it`
      })
    }
    // The original joins a user part into the path (`sqlite://user:pw@/x.db` is `./user:pw@/x.db`): `init` made a folder
    // tree of the credentials, and `config-show` printed them as `backend.path`. Not a form anyone means: refused.
    // Up to the first "/", not to "?" or "#": a password may hold them (`sqlite://u:pa#ss@/x.db` leaked `u:pa`).
    if (/^sqlite:\/\/[^/]*@/i.test(url)) {
      return yield* new ConfigError({
        key: "backend.url",
        origin: urlWhere,
        problem: `got '${redacted}', a user or password part in a SQLite URL; ${sqliteForms}`
      })
    }
    const file = sqlitePath(url, cwd)
    // This tool once read such URLs otherwise: say so when only the earlier reading finds an archive.
    const source = sources[rank.get("backend.url")!]
    const earlier = earlierReading(url, source?.baseDir ?? cwd)
    const warning = earlier !== undefined && earlier !== file && fs.existsSync(earlier) && !fs.existsSync(file)
      ? new ConfigWarning({
        key: "backend.url",
        value: show(redacted),
        origin: urlWhere,
        why:
          `names ${file} as the original tool reads it, not ${earlier} (which exists) as earlier versions of this tool did`,
        using: show(file)
      })
      : undefined
    return { backend, url, path: file, warning }
  })

/** The evidence chain's key: the value given, else the key file's content (a trailing newline is not part of it). */
const hmacKey = (value: string | null, file: string | null, origin: Origin) =>
  value !== null ? Effect.succeed(Redacted.make(value)) : file === null ? Effect.succeed(null) : Effect.try({
    try: () => {
      // Strict: read leniently, every byte that is not UTF-8 became U+FFFD, and two binary keys verified each other.
      const key = FileOps.readBounded(file, 64 * 1024, { strictUtf8: true }).replace(/\r?\n$/, "")
      if (key === "") throw new Error(`${file} is empty`)
      return Redacted.make(key)
    },
    catch: (e) =>
      new ConfigError({
        key: "evidence.hmac_key_file",
        origin: showOrigin(origin),
        problem: (e as NodeJS.ErrnoException).code === "ENOENT"
          ? `${file} does not exist`
          : e instanceof Utf8.NotUtf8
          // Not the byte: it is the key's.
          ? `${file} is not UTF-8 text: the key is read as text (write it as hex or base64, e.g. openssl rand -hex 32)`
          : (e as Error).message
      })
  })

export interface LoadOptions {
  readonly cwd: string
  readonly env: Readonly<Record<string, string | undefined>>
  /** `--config-file`; wins over `CODEX_ARCHIVE_CONFIG` and discovery. */
  readonly configFile?: string | undefined
  readonly flags?: ReadonlyArray<readonly [key: string, flag: string, value: unknown]>
}

/**
 * Loads the file (explicit, else `CODEX_ARCHIVE_CONFIG`, else `.codex/archive.toml` when present) and composes.
 * The original tool never reads `.codex/archive.toml` by itself, so a discovered file may not choose the archive:
 * its backend keys count only where they name the archive the other sources name anyway.
 */
export const load = (options: LoadOptions): Effect.Effect<Loaded, ConfigError> =>
  Effect.gen(function*() {
    const discovered = path.resolve(options.cwd, ".codex/archive.toml")
    const fromEnvVar = options.env.CODEX_ARCHIVE_CONFIG?.trim() || undefined
    const explicit = options.configFile ?? fromEnvVar
    const chosenBy = options.configFile !== undefined
      ? "flag --config-file"
      : fromEnvVar !== undefined
      ? "env CODEX_ARCHIVE_CONFIG"
      : "discovered"
    const file = explicit !== undefined
      ? path.resolve(options.cwd, explicit)
      : fs.existsSync(discovered)
      ? discovered
      : undefined
    const fromFile = file === undefined ? undefined : yield* fromToml(file, chosenBy)
    const rest = [fromEnv(options.env, options.cwd), fromFlags(options.flags ?? [], options.cwd)]
    const all = compose([...(fromFile ? [fromFile.source] : []), ...rest], options.cwd)
    const found: Array<ConfigWarning> = []
    let composed: Omit<Loaded, "file">
    if (!fromFile || explicit !== undefined) composed = yield* all
    else {
      found.push(
        new ConfigWarning({
          key: "config file",
          value: show(file),
          origin: "the working folder",
          why:
            "read without being named, which the original tool never does (name it with --config-file or CODEX_ARCHIVE_CONFIG)",
          using: "it, but not to choose the archive"
        })
      )
      const backendKeys = ["backend.backend", "backend.url"].filter((key) => fromFile.source.values.has(key))
      const values = new Map([...fromFile.source.values].filter(([key]) => !backendKeys.includes(key)))
      const without = yield* compose([{ ...fromFile.source, values }, ...rest], options.cwd)
      const withKeys = backendKeys.length > 0 ? yield* Effect.either(all) : undefined
      const same = (a: ArchiveConfig, b: ArchiveConfig) =>
        a.backend.backend === b.backend.backend &&
        (a.backend.path ?? Redacted.value(a.backend.url)) === (b.backend.path ?? Redacted.value(b.backend.url))
      if (withKeys === undefined) composed = without
      else if (withKeys._tag === "Right" && same(withKeys.right.config, without.config)) composed = withKeys.right
      else {
        for (const key of backendKeys) {
          const { origin, value } = fromFile.source.values.get(key)!
          const used = key === "backend.url"
            ? Redacted.value(without.config.backend.url)
            : without.config.backend.backend
          found.push(
            new ConfigWarning({
              key,
              value: showValue(key, value),
              origin: showOrigin(origin),
              why: "would open another archive than the original tool, which does not read this file",
              using: showValue(key, used)
            })
          )
        }
        composed = without
      }
    }
    const warnings = [...(fromFile?.warnings ?? []), ...found, ...composed.warnings]
    // Strict mode: what would be a warning is the error it was before warnings existed; the first one is reported.
    if (composed.strict && warnings.length > 0) return yield* Effect.fail(warnings[0]!.toError())
    return { ...composed, warnings, file }
  })

/** The spec §4.4 shape, URL redacted unless `reveal`. */
export const toJson = (config: ArchiveConfig, reveal = false): Record<string, unknown> => ({
  backend: {
    backend: config.backend.backend,
    url: reveal ? Redacted.value(config.backend.url) : Redact.url(Redacted.value(config.backend.url)),
    path: config.backend.path
  },
  logging: { ...config.logging },
  retry: { ...config.retry },
  batch: { ...config.batch },
  performance: { ...config.performance },
  store: { ...config.store },
  // The evidence key is never shown, not even with `reveal`.
  evidence: { ...config.evidence, hmac_key: config.evidence.hmac_key === null ? null : "***" }
})

/** Per key, its value (URL redacted unless `reveal`) and where it came from: `config-show --origin`. */
export const explain = (
  loaded: Pick<Loaded, "config" | "origins">,
  reveal = false
): Record<string, Record<string, { readonly value: unknown; readonly origin: string }>> => {
  const out: Record<string, Record<string, { value: unknown; origin: string }>> = {}
  for (const [section, body] of Object.entries(toJson(loaded.config, reveal))) {
    out[section] = {}
    for (const [key, value] of Object.entries(body as Record<string, unknown>)) {
      // The file comes from the URL, and so does where it was set.
      const origin = loaded.origins.get(`${section}.${key === "path" && section === "backend" ? "url" : key}`)
      out[section][key] = { value, origin: origin === undefined ? "default" : showOrigin(origin) }
    }
  }
  return out
}

/** Defaults only (for tests and embedders who configure in code). */
export const defaults = (cwd: string): Effect.Effect<ArchiveConfig, ConfigError> =>
  Effect.map(compose([], cwd), (loaded) => loaded.config)
