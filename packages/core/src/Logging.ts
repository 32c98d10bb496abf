/**
 * The logger (spec §5): `text` or `json` lines on stderr, annotations and log spans as fields, and credentials
 * redacted inside the logger itself (spec §4.5), so no call site can leak one.
 */
import { Cause, HashMap, Layer, List, Logger, LogLevel, Redacted } from "effect"
import * as CanonicalJson from "./CanonicalJson.js"
import type { LogFormat, LogLevel as ConfigLogLevel } from "./Config.js"
import * as Printable from "./Printable.js"
import * as Redact from "./Redact.js"

export interface Options {
  readonly level: ConfigLogLevel
  readonly format: LogFormat
  /** Known secrets (a URL, a password) that must never appear verbatim, even outside a URL. */
  readonly secrets?: ReadonlyArray<string | Redacted.Redacted<string>> | undefined
}

export const component = "codex.archive"

const levels: Record<ConfigLogLevel, LogLevel.LogLevel> = {
  debug: LogLevel.Debug,
  info: LogLevel.Info,
  warning: LogLevel.Warning,
  error: LogLevel.Error
}

/** Python's level names (spec §5): `WARNING`, not Effect's `WARN`. */
const levelName = (level: LogLevel.LogLevel): string =>
  level._tag === "Warning" ? "WARNING" : level._tag === "Fatal" ? "CRITICAL" : level.label

/** A secret URL's password also leaks alone (drivers echo it), so it is a secret of its own: `Redact.secretsOf`. */
export const expandSecrets = (secrets: Options["secrets"]): ReadonlyArray<string> =>
  [
    ...new Set(
      (secrets ?? []).flatMap((entry) => Redact.secretsOf(Redacted.isRedacted(entry) ? Redacted.value(entry) : entry))
    )
  ]
    .sort((a, b) => b.length - a.length)

/** Redacts every string inside a value, however deep, keeping its shape. */
const redactDeep = (value: unknown, secrets: ReadonlyArray<string>, depth = 0): unknown => {
  if (typeof value === "string") return Redact.secrets(value, secrets)
  if (Redacted.isRedacted(value)) return "<redacted>"
  if (value === null || typeof value !== "object" || depth > 8) return value
  if (value instanceof Error) return Redact.secrets(value.message, secrets)
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, secrets, depth + 1))
  if (value instanceof Date) return value.toISOString()
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value)) out[k] = redactDeep(v, secrets, depth + 1)
  return out
}

const messageText = (message: unknown): string => {
  const parts = Array.isArray(message) ? message : [message]
  return parts.map((p) => (typeof p === "string" ? p : p instanceof Error ? p.message : safeJson(p))).join(" ")
}

const safeJson = (value: unknown): string => {
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}

/** `YYYY-MM-DDTHH:MM:SS.ffffffZ` (spec §5); the clock has milliseconds, so the last three digits are zero. */
export const timestamp = (date: Date): string => date.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z")

const textValue = (value: unknown): string => {
  const s = typeof value === "string" ? value : safeJson(value)
  return /^[^\s"=]*$/.test(s) && s !== "" ? s : JSON.stringify(s)
}

/** The line-rendering logger, without a sink: `layer` sends it to stderr; tests may collect it. */
export const make = (options: Omit<Options, "level">): Logger.Logger<unknown, string> => {
  const secrets = expandSecrets(options.secrets)
  return Logger.make(({ annotations, cause, date, logLevel, message, spans }) => {
    const extra: Record<string, unknown> = {}
    for (const [key, value] of HashMap.toEntries(annotations)) extra[key] = redactDeep(value, secrets)
    const now = date.getTime()
    for (const span of List.toArray(spans)) extra[span.label] = `${now - span.startTime}ms`
    if (!Cause.isEmpty(cause)) extra.cause = Redact.secrets(Cause.pretty(cause, { renderErrorCause: true }), secrets)
    const text = Redact.secrets(messageText(message), secrets)
    const level = levelName(logLevel)
    if (options.format === "json") {
      const line = CanonicalJson.stringify({ component, extra, level, message: text, timestamp: timestamp(date) })
      // JSON escapes C0 controls only: a C1 control or U+2028 in a value would reach the terminal raw.
      return Printable.escapeJson(line)
    }
    const keys = Object.keys(extra).sort()
    const head = text === "" ? `[${level}]` : `[${level}] ${text}`
    // One record, one line: a file name holding a line break (`skipped …`) cannot forge a line of its own, nor an
    // annotation a terminal sequence.
    return Printable.escapeLog(
      keys.length === 0 ? head : `${head} -- ${keys.map((k) => `${k}=${textValue(extra[k])}`).join(" ")}`
    )
  })
}

/** Replaces Effect's default logger with ours, on stderr, at the configured level. */
export const layer = (options: Options): Layer.Layer<never> =>
  Layer.merge(
    Logger.replace(Logger.defaultLogger, Logger.withConsoleError(make(options))),
    Logger.minimumLogLevel(levels[options.level] ?? LogLevel.Info)
  )

/**
 * A host's own logger, given only redacted input: every string in the message and annotations has the URL credentials
 * and the given secrets scrubbed, and a cause arrives as its redacted rendering (a failure of text). Wrap the logger a
 * program installs, e.g. `Logger.replace(Logger.defaultLogger, Logging.redacting(myLogger, { secrets: [url] }))`, and
 * nothing the archive logs can leak what our own logger never prints.
 */
export const redacting = <Message, Output>(
  logger: Logger.Logger<Message, Output>,
  options: { readonly secrets?: Options["secrets"] } = {}
): Logger.Logger<Message, Output> => {
  const secrets = expandSecrets(options.secrets)
  return Logger.mapInputOptions(logger, (input) => ({
    ...input,
    message: redactDeep(input.message, secrets) as Message,
    annotations: HashMap.map(input.annotations, (value) => redactDeep(value, secrets)),
    cause: Cause.isEmpty(input.cause)
      ? input.cause
      : Cause.fail(Redact.secrets(Cause.pretty(input.cause, { renderErrorCause: true }), secrets))
  }))
}
