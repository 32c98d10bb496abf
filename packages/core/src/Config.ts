/**
 * The whole configuration document (spec §4, "Design B" keys) and how it is composed from its sources:
 * defaults < TOML file < `CODEX_ARCHIVE_*` environment < command-line flags. Every value remembers where it came
 * from, every invalid value is an error naming the key, the source and what was expected, and the backend URL is
 * `Redacted` from the moment it is read. Nothing here reads `process.env`: the caller passes the environment.
 */
import { Context, Data, Effect, Redacted } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { parse as parseToml } from "smol-toml"
import { defaultInlineLimit } from "./ArchiveStore.js"
import * as Redact from "./Redact.js"

export type BackendName = "sqlite" | "postgres" | "mariadb"
export const backendNames: ReadonlyArray<BackendName> = ["sqlite", "postgres", "mariadb"]
/** Other names a backend goes by: the URL schemes' spellings, accepted wherever a backend is named. */
export const backendAliases: Readonly<Record<string, BackendName>> = { postgresql: "postgres", mysql: "mariadb" }
/** Every accepted spelling of a backend name (any letter case), for messages that list them. */
export const backendSpellings: ReadonlyArray<string> = ["sqlite", "postgres", "postgresql", "mariadb", "mysql"]

/** A backend named in any accepted spelling, any case (`SQLite`, `PostgreSQL`, `mysql`); `undefined` otherwise. */
export const backendNameOf = (text: string): BackendName | undefined => {
  const lower = text.trim().toLowerCase()
  const name = backendAliases[lower] ?? lower
  return backendNames.find((n) => n === name)
}
export type LogLevel = "debug" | "info" | "warning" | "error"
export type LogFormat = "text" | "json"

export interface ArchiveConfig {
  readonly backend: { readonly backend: BackendName; readonly url: Redacted.Redacted<string> }
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
export class ArchiveConfigTag extends Context.Tag("@codex-archive/core/ArchiveConfig")<ArchiveConfigTag, ArchiveConfig>() {}

export const defaultUrl = "sqlite:///./.codex/archive.sqlite"

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

type Kind =
  | { readonly type: "enum"; readonly values: ReadonlyArray<string>; readonly aliases?: Record<string, string> }
  | { readonly type: "string"; readonly nonEmpty?: boolean }
  | { readonly type: "path" }
  | { readonly type: "url" }
  | { readonly type: "bool" }
  | { readonly type: "int"; readonly min: number }
  | { readonly type: "float"; readonly min: number; readonly max?: number }
  | { readonly type: "seed" }
  | { readonly type: "secret" }

interface Field {
  readonly key: string
  readonly env: string
  readonly kind: Kind
  readonly default: unknown
}

/** Every key of the document, its environment variable (spec §4.3), its type and default (spec §4.2). */
export const fields: ReadonlyArray<Field> = [
  { key: "backend.backend", env: "CODEX_ARCHIVE_BACKEND", kind: { type: "enum", values: backendNames, aliases: backendAliases }, default: "sqlite" },
  { key: "backend.url", env: "CODEX_ARCHIVE_URL", kind: { type: "url" }, default: defaultUrl },
  { key: "logging.level", env: "CODEX_ARCHIVE_LOG_LEVEL", kind: { type: "enum", values: ["debug", "info", "warning", "error"], aliases: { warn: "warning", critical: "error" } }, default: "info" },
  { key: "logging.format", env: "CODEX_ARCHIVE_LOG_FORMAT", kind: { type: "enum", values: ["text", "json"] }, default: "text" },
  { key: "logging.evidence_file", env: "CODEX_ARCHIVE_LOG_EVIDENCE", kind: { type: "path" }, default: null },
  { key: "retry.enabled", env: "CODEX_ARCHIVE_RETRY_ENABLED", kind: { type: "bool" }, default: true },
  { key: "retry.max_attempts", env: "CODEX_ARCHIVE_RETRY_ATTEMPTS", kind: { type: "int", min: 1 }, default: 5 },
  { key: "retry.initial_delay", env: "CODEX_ARCHIVE_RETRY_INITIAL", kind: { type: "float", min: 0 }, default: 1.0 },
  { key: "retry.max_delay", env: "CODEX_ARCHIVE_RETRY_MAX", kind: { type: "float", min: 0 }, default: 32.0 },
  { key: "retry.multiplier", env: "CODEX_ARCHIVE_RETRY_MULTIPLIER", kind: { type: "float", min: 1 }, default: 2.0 },
  { key: "retry.jitter", env: "CODEX_ARCHIVE_RETRY_JITTER", kind: { type: "float", min: 0, max: 1 }, default: 0.1 },
  { key: "retry.seed", env: "CODEX_ARCHIVE_RETRY_SEED", kind: { type: "seed" }, default: null },
  { key: "batch.concurrent", env: "CODEX_ARCHIVE_BATCH_CONCURRENT", kind: { type: "int", min: 1 }, default: 4 },
  { key: "batch.progress_interval", env: "CODEX_ARCHIVE_BATCH_PROGRESS", kind: { type: "int", min: 1 }, default: 10 },
  { key: "batch.results_path", env: "CODEX_ARCHIVE_BATCH_RESULTS", kind: { type: "path" }, default: null },
  { key: "performance.enabled", env: "CODEX_ARCHIVE_PERF_ENABLED", kind: { type: "bool" }, default: true },
  { key: "performance.emit_to_evidence", env: "CODEX_ARCHIVE_PERF_EVIDENCE", kind: { type: "bool" }, default: true },
  { key: "store.inline_limit", env: "CODEX_ARCHIVE_INLINE_LIMIT", kind: { type: "int", min: 0 }, default: defaultInlineLimit },
  { key: "evidence.dir", env: "CODEX_EVIDENCE_DIR", kind: { type: "path" }, default: ".codex/evidence" },
  { key: "evidence.hmac_key_file", env: "CODEX_EVIDENCE_HMAC_KEY_FILE", kind: { type: "path" }, default: null },
  { key: "evidence.hmac_key", env: "CODEX_EVIDENCE_HMAC_KEY", kind: { type: "secret" }, default: null }
]

const fieldByKey = new Map(fields.map((f) => [f.key, f]))

/** One layer of raw values, keyed `section.key`, all from one origin kind. */
export interface Source {
  readonly values: ReadonlyMap<string, { readonly value: unknown; readonly origin: Origin }>
  /** Relative paths in this source resolve against this folder. */
  readonly baseDir: string
}

export interface Loaded {
  readonly config: ArchiveConfig
  readonly origins: ReadonlyMap<string, Origin>
  readonly warnings: ReadonlyArray<string>
  readonly file: string | undefined
}

const truthy = new Set(["1", "true", "yes", "on", "enabled"])
const falsy = new Set(["0", "false", "no", "off", "disabled"])

const describeKind = (kind: Kind): string => {
  switch (kind.type) {
    case "enum":
      return `one of ${kind.values.join(", ")}`
    case "bool":
      return "a boolean (true/false, yes/no, on/off, 1/0)"
    case "int":
      return `a whole number >= ${kind.min}`
    case "float":
      return kind.max === undefined ? `a number >= ${kind.min}` : `a number from ${kind.min} to ${kind.max}`
    case "seed":
      return "a whole number"
    case "url":
      return "a URL: sqlite:///PATH, postgres://..., postgresql://..., mariadb://... or mysql://..."
    default:
      return "a non-empty string"
  }
}

const show = (value: unknown): string => (typeof value === "string" ? `'${value}'` : JSON.stringify(value))

/** Validates and coerces one raw value; `Left` carries what was expected. */
const coerce = (field: Field, raw: unknown, baseDir: string): { ok: true; value: unknown } | { ok: false; problem: string } => {
  const fail = (extra = "") => ({ ok: false as const, problem: `got ${show(raw)}, expected ${describeKind(field.kind)}${extra}` })
  const kind = field.kind
  const text = typeof raw === "string" ? raw.trim() : undefined
  switch (kind.type) {
    case "enum": {
      if (text === undefined) return fail()
      const lower = text.toLowerCase()
      const value = kind.aliases?.[lower] ?? lower
      return kind.values.includes(value) ? { ok: true, value } : fail()
    }
    case "bool": {
      if (typeof raw === "boolean") return { ok: true, value: raw }
      const lower = text?.toLowerCase() ?? (typeof raw === "number" ? String(raw) : "")
      return truthy.has(lower) ? { ok: true, value: true } : falsy.has(lower) ? { ok: true, value: false } : fail()
    }
    case "int":
    case "seed": {
      const n = typeof raw === "number" ? raw : text !== undefined && /^[+-]?\d+$/.test(text) ? Number(text) : NaN
      if (!Number.isInteger(n)) return fail()
      return kind.type === "int" && n < kind.min ? fail() : { ok: true, value: n }
    }
    case "float": {
      const n = typeof raw === "number" ? raw : text !== undefined && text !== "" ? Number(text) : NaN
      if (!Number.isFinite(n) || n < kind.min || (kind.max !== undefined && n > kind.max)) return fail()
      return { ok: true, value: n }
    }
    case "path": {
      if (raw === null) return { ok: true, value: null }
      if (text === undefined || text === "") return fail()
      return { ok: true, value: path.resolve(baseDir, text) }
    }
    case "url": {
      if (text === undefined || text === "") return fail(" (the archive URL must be provided)")
      if (!inferBackend(text)) return fail()
      return { ok: true, value: resolveSqliteUrl(text, baseDir) }
    }
    case "string":
      return text ? { ok: true, value: text } : fail()
    case "secret":
      // Never echo the value: it is a key.
      return text ? { ok: true, value: text } : { ok: false, problem: "expected a non-empty string" }
  }
}

/** `postgres…` → postgres; `mariadb…`/`mysql…` → mariadb; `sqlite…` → sqlite (spec §2.4). */
export const inferBackend = (url: string): BackendName | undefined => {
  const lower = url.trim().toLowerCase()
  if (lower.startsWith("postgres")) return "postgres"
  if (lower.startsWith("mariadb") || lower.startsWith("mysql")) return "mariadb"
  if (lower.startsWith("sqlite:")) return "sqlite"
  return undefined
}

/** The file path of a `sqlite:` URL (spec §2.4): `sqlite:///rel`, `sqlite:////abs`, `sqlite://rel`. */
export const sqlitePath = (url: string): string => {
  const rest = url.replace(/^sqlite:/i, "")
  const file = rest.startsWith("///") ? rest.slice(3) : rest.startsWith("//") ? rest.slice(2) : rest
  return file.startsWith("~/") ? path.join(os.homedir(), file.slice(2)) : file
}

/** A relative SQLite file in a config file means relative to that file, so the URL is made absolute early. */
const resolveSqliteUrl = (url: string, baseDir: string): string => {
  if (inferBackend(url) !== "sqlite") return url
  const file = sqlitePath(url)
  if (file === ":memory:" || path.isAbsolute(file)) return url
  return `sqlite:///${path.resolve(baseDir, file)}`
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
export const fromToml = (file: string, chosenBy?: string): Effect.Effect<{ source: Source; warnings: ReadonlyArray<string> }, ConfigError> =>
  Effect.gen(function*() {
    const absolute = path.resolve(file)
    const text = yield* Effect.try({
      try: () => fs.readFileSync(absolute, "utf8"),
      catch: (e) =>
        new ConfigError({
          key: "config file",
          origin: chosenBy ?? absolute,
          problem: (e as NodeJS.ErrnoException).code === "ENOENT"
            ? `${absolute} does not exist`
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
    const warnings: Array<string> = []
    for (const [section, body] of Object.entries(doc)) {
      if (body === null || typeof body !== "object" || Array.isArray(body)) {
        warnings.push(`${absolute}: unknown top-level key '${section}' ignored`)
        continue
      }
      for (const [key, value] of Object.entries(body as Record<string, unknown>)) {
        const full = `${section}.${key}`
        const line = lineOf(text, section, key)
        if (!fieldByKey.has(full)) {
          warnings.push(`${absolute}${line ? `:${line}` : ""}: unknown key '${full}' ignored`)
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
    if (value !== undefined && value.trim() !== "") values.set(field.key, { value, origin: { _tag: "Env", variable: field.env } })
  }
  return { values, baseDir: cwd }
}

/** Flag values keyed `section.key`, each naming the flag that set it. */
export const fromFlags = (flags: ReadonlyArray<readonly [key: string, flag: string, value: unknown]>, cwd: string): Source => {
  const values = new Map<string, { value: unknown; origin: Origin }>()
  for (const [key, flag, value] of flags) {
    if (value !== undefined) values.set(key, { value, origin: { _tag: "Flag", flag } })
  }
  return { values, baseDir: cwd }
}

/** Composes sources, lowest precedence first, into a validated configuration. */
export const compose = (sources: ReadonlyArray<Source>, cwd: string): Effect.Effect<Omit<Loaded, "warnings" | "file">, ConfigError> =>
  Effect.gen(function*() {
    const values = new Map<string, unknown>()
    const origins = new Map<string, Origin>()
    const rank = new Map<string, number>()
    for (const field of fields) {
      const base = field.kind.type === "url" ? resolveSqliteUrl(String(field.default), cwd) : field.kind.type === "path" && field.default !== null ? path.resolve(cwd, String(field.default)) : field.default
      values.set(field.key, base)
      origins.set(field.key, { _tag: "Default" })
      rank.set(field.key, -1)
    }
    for (const [index, source] of sources.entries()) {
      for (const [key, { origin, value }] of source.values) {
        const field = fieldByKey.get(key)!
        const result = coerce(field, value, source.baseDir)
        if (!result.ok) {
          // Not yet registered (the file is still being read): its secrets, even of a malformed URL, go here.
          const problem = field.kind.type === "url"
            ? Redact.secrets(result.problem, Redact.secretsOf(typeof value === "string" ? value : ""))
            : result.problem
          return yield* new ConfigError({ key, origin: showOrigin(origin), problem })
        }
        values.set(key, result.value)
        origins.set(key, origin)
        rank.set(key, index)
      }
    }
    const url = values.get("backend.url") as string
    const inferred = inferBackend(url)!
    if (rank.get("backend.backend")! < rank.get("backend.url")!) {
      values.set("backend.backend", inferred)
      origins.set("backend.backend", { _tag: "Inferred", from: "backend.url" })
    } else if (values.get("backend.backend") !== inferred) {
      return yield* new ConfigError({
        key: "backend.backend",
        origin: showOrigin(origins.get("backend.backend")!),
        problem: `'${values.get("backend.backend")}' does not match the ${inferred} URL in backend.url (${showOrigin(origins.get("backend.url")!)})`
      })
    }
    const get = <A>(key: string) => values.get(key) as A
    const config: ArchiveConfig = {
      backend: { backend: get("backend.backend"), url: Redacted.make(url) },
      logging: { level: get("logging.level"), format: get("logging.format"), evidence_file: get("logging.evidence_file") },
      retry: {
        enabled: get("retry.enabled"),
        max_attempts: get("retry.max_attempts"),
        initial_delay: get("retry.initial_delay"),
        max_delay: get("retry.max_delay"),
        multiplier: get("retry.multiplier"),
        jitter: get("retry.jitter"),
        seed: get("retry.seed")
      },
      batch: { concurrent: get("batch.concurrent"), progress_interval: get("batch.progress_interval"), results_path: get("batch.results_path") },
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
    return { config, origins }
  })

/** The evidence chain's key: the value given, else the key file's content (a trailing newline is not part of it). */
const hmacKey = (value: string | null, file: string | null, origin: Origin) =>
  value !== null ? Effect.succeed(Redacted.make(value)) : file === null ? Effect.succeed(null) : Effect.try({
    try: () => {
      const key = fs.readFileSync(file, "utf8").replace(/\r?\n$/, "")
      if (key === "") throw new Error(`${file} is empty`)
      return Redacted.make(key)
    },
    catch: (e) =>
      new ConfigError({
        key: "evidence.hmac_key_file",
        origin: showOrigin(origin),
        problem: (e as NodeJS.ErrnoException).code === "ENOENT" ? `${file} does not exist` : (e as Error).message
      })
  })

export interface LoadOptions {
  readonly cwd: string
  readonly env: Readonly<Record<string, string | undefined>>
  /** `--config-file`; wins over `CODEX_ARCHIVE_CONFIG` and discovery. */
  readonly configFile?: string | undefined
  readonly flags?: ReadonlyArray<readonly [key: string, flag: string, value: unknown]>
}

/** Loads the file (explicit, else `CODEX_ARCHIVE_CONFIG`, else `.codex/archive.toml` when present) and composes. */
export const load = (options: LoadOptions): Effect.Effect<Loaded, ConfigError> =>
  Effect.gen(function*() {
    const discovered = path.resolve(options.cwd, ".codex/archive.toml")
    const fromEnvVar = options.env.CODEX_ARCHIVE_CONFIG?.trim() || undefined
    const explicit = options.configFile ?? fromEnvVar
    const chosenBy = options.configFile !== undefined ? "flag --config-file" : fromEnvVar !== undefined ? "env CODEX_ARCHIVE_CONFIG" : "discovered"
    const file = explicit !== undefined ? path.resolve(options.cwd, explicit) : fs.existsSync(discovered) ? discovered : undefined
    const fromFile = file === undefined ? undefined : yield* fromToml(file, chosenBy)
    const sources = [
      ...(fromFile ? [fromFile.source] : []),
      fromEnv(options.env, options.cwd),
      fromFlags(options.flags ?? [], options.cwd)
    ]
    const composed = yield* compose(sources, options.cwd)
    return { ...composed, warnings: fromFile?.warnings ?? [], file }
  })

/** The spec §4.4 shape, URL redacted unless `reveal`. */
export const toJson = (config: ArchiveConfig, reveal = false): Record<string, unknown> => ({
  backend: { backend: config.backend.backend, url: reveal ? Redacted.value(config.backend.url) : Redact.url(Redacted.value(config.backend.url)) },
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
      const origin = loaded.origins.get(`${section}.${key}`)
      out[section][key] = { value, origin: origin === undefined ? "default" : showOrigin(origin) }
    }
  }
  return out
}

/** Defaults only (for tests and embedders who configure in code). */
export const defaults = (cwd: string): Effect.Effect<ArchiveConfig, ConfigError> =>
  Effect.map(compose([], cwd), (loaded) => loaded.config)
