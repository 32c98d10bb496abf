/**
 * Every key of the configuration document as data: its environment variable, its default, and its Schema, which
 * decodes what a source gives (a TOML value, an environment string, a flag's value) to the value used. Beside what a
 * key accepts as written, each type lists what the original tool makes of other values (falls back, clamps): a file or
 * the environment may use those, with a warning. A schema's error is the whole problem, `got X, expected Y`.
 */
import { Either, ParseResult, Schema } from "effect"
import * as path from "node:path"
import { defaultInlineLimit } from "./ArchiveStore.js"
import * as RecordSchema from "./internal/RecordSchema.js"

export type BackendName = "sqlite" | "postgres" | "mariadb"
export const backendNames: ReadonlyArray<BackendName> = ["sqlite", "postgres", "mariadb"]
/** Other names a backend goes by: the URL schemes' spellings, accepted wherever a backend is named. */
export const backendAliases: Readonly<Record<string, BackendName>> = { postgresql: "postgres", mysql: "mariadb" }
export type LogLevel = "debug" | "info" | "warning" | "error"
export type LogFormat = "text" | "json"

export const defaultUrl = "sqlite:///./.codex/archive.sqlite"

/**
 * How a value is shown in messages: strings quoted (as JSON when a line break or control character would split the
 * message), numbers JSON cannot hold (TOML's nan, inf) as themselves, anything else as JSON.
 */
export const show = (value: unknown): string =>
  typeof value === "string"
    ? RecordSchema.quoted(value)
    : typeof value === "number" && !Number.isFinite(value)
    ? String(value)
    : JSON.stringify(value)

/** Where one value is decoded: what its relative paths mean, and whether the original tool's tolerances apply. */
export interface Place {
  /** Relative paths in this source resolve against this folder. */
  readonly baseDir: string
  readonly cwd: string
  readonly fromFile: boolean
  /** A file or the environment (sources the original tool reads too) for a key it reads: what it tolerates is a warning. */
  readonly lenient: boolean
}

/** A kind of value the original tool takes otherwise than as written: which values, what it uses, and why. */
interface Tolerance {
  readonly why: string
  /** Decodes such a value to the value used. */
  readonly schema: Schema.Schema.AnyNoContext
}

export interface ValueType {
  /** What a valid value is, in words: errors say `expected <this>`. */
  readonly expected: string
  /** The values taken as written, decoded to the value used. */
  readonly accepts: (place: Place) => Schema.Schema.AnyNoContext
  /** What the original tool does with values `accepts` refuses, tried in order; `fallback` is the key's default. */
  readonly tolerates: (place: Place, fallback: unknown) => ReadonlyArray<Tolerance>
  /** The error's text for a refused value, when not `got <value>, expected <expected>`. */
  readonly problem?: (value: unknown) => string
}

export interface Field {
  readonly key: string
  readonly env: string
  readonly type: ValueType
  readonly default: unknown
  /** A key of ours the original tool never reads: nothing to be compatible with, so no leniency. */
  readonly ours?: boolean
}

/** A value decoded: what is used, and why it is not what was written when the original tool's tolerance applied. */
const Decoded = Schema.Struct({ value: Schema.Unknown, tolerated: Schema.optional(Schema.String) })
export type Decoded = typeof Decoded.Type

/** One member of a key's schema: values `schema` decodes are used as it decodes them, noting `why` when tolerated. */
const using = (schema: Schema.Schema.AnyNoContext, tolerated?: string) =>
  Schema.transform(schema, Decoded, {
    strict: true,
    decode: (value) => (tolerated === undefined ? { value } : { value, tolerated }),
    encode: (decoded) => decoded.value
  })

/** Values of `schema` (any by default), decoded to one constant: what the original tool runs with instead. */
const always = (value: unknown, schema: Schema.Schema.AnyNoContext = Schema.Unknown) =>
  Schema.transform(schema, Schema.Unknown, { strict: true, decode: () => value, encode: (v) => v })

/** Values `schema` does not decode: the rest, after everything else was tried. */
const other = (schema: Schema.Schema.AnyNoContext) => {
  const decode = ParseResult.decodeUnknownEither(schema)
  return Schema.Unknown.pipe(Schema.filter((u) => Either.isLeft(decode(u))))
}

/** The schema of one key in one place: what it accepts, then (when lenient) what the original tool tolerates. */
export const schemaOf = (field: Field, place: Place): Schema.Schema<Decoded, unknown> => {
  const { type } = field
  const members = [
    using(type.accepts(place)),
    ...(place.lenient ? type.tolerates(place, field.default).map((t) => using(t.schema, t.why)) : [])
  ]
  const problem = type.problem ?? ((value: unknown) => `got ${show(value)}, expected ${type.expected}`)
  return Schema.Union(...members).annotations({
    message: (issue) => ({ message: problem(issue.actual), override: true })
  }) as Schema.Schema<Decoded, unknown>
}

/** Text, blanks around it dropped (a TOML value or an environment variable as typed). */
const Text = Schema.Trim
const NonEmptyText = Text.pipe(Schema.nonEmptyString())
/** Text in lower case: a word of a closed set (`ON`, ` Json `). */
const Word = Text.pipe(Schema.compose(Schema.Lowercase))

/** Python's `int()` of a string: digits with an optional sign and `_` between digits. */
const IntText = Schema.transform(Text.pipe(Schema.pattern(/^[+-]?\d+(_\d+)*$/)), Schema.Number, {
  strict: true,
  decode: (text) => Number(text.replace(/_/g, "")),
  encode: String
})
/** Python's `float()` of a string, finite values only. */
const FloatText = Schema.transform(
  Text.pipe(Schema.pattern(/^[+-]?(\d+(_\d+)*(\.(\d+(_\d+)*)?)?|\.\d+(_\d+)*)([eE][+-]?\d+)?$/)),
  Schema.Number,
  { strict: true, decode: (text) => Number(text.replace(/_/g, "")), encode: String }
)
/** A whole number as TOML or text gives it (spec §4.2 coercion). */
const Whole = Schema.Union(Schema.Number, IntText).pipe(Schema.int())
/** A finite number as TOML or text gives it. */
const Finite = Schema.Union(Schema.Number, FloatText).pipe(Schema.finite())
/** A boolean the original tool reads as a number. */
const BooleanAsNumber = Schema.transform(Schema.Boolean, Schema.Number, {
  strict: true,
  decode: Number,
  encode: (n) => n !== 0
})
const fallsBack = (expected: string, fallback: unknown): Tolerance => ({
  why: `not ${expected}, the original tool falls back to the default`,
  schema: always(fallback)
})
const asNumber: Tolerance = { why: "a boolean, the original tool reads it as a number", schema: BooleanAsNumber }

/** One of `values`, in any case, `aliases` mapped to theirs. */
export const oneOf = (values: ReadonlyArray<string>, options: {
  readonly aliases?: Readonly<Record<string, string>>
  /** The spellings the original tool accepts (lowercased, untrimmed); others we accept are tolerated. */
  readonly original?: ReadonlyArray<string>
  /** What the original tool runs with for a value it does not know (it accepts any string). */
  readonly fallback?: string
} = {}): ValueType => {
  const { aliases = {}, fallback, original } = options
  const known = Word.pipe(
    Schema.transform(Schema.String, { strict: true, decode: (lower) => aliases[lower] ?? lower, encode: (s) => s }),
    Schema.filter((value) => values.includes(value))
  )
  const spelledAsTheOriginal = Schema.String.pipe(Schema.filter((raw) => original?.includes(raw.toLowerCase()) ?? true))
  return {
    expected: `one of ${values.join(", ")}`,
    accepts: () => spelledAsTheOriginal.pipe(Schema.compose(known)),
    tolerates: () => [
      ...(original === undefined ? [] : [
        { why: `the original tool accepts only ${original.join(", ")}`, schema: known }
      ]),
      // The original lowercases and fails on anything but a string, so only a string falls back.
      ...(fallback === undefined ? [] : [
        { why: `not a level the original tool knows, it runs at ${fallback}`, schema: always(fallback, Schema.String) }
      ])
    ]
  }
}

/** One of `words` in any case, decoded to `value`. */
const spelled = (words: ReadonlyArray<string>, value: boolean) =>
  always(value, Word.pipe(Schema.filter((word) => words.includes(word))))

export const bool: ValueType = {
  expected: "a boolean (true/false, yes/no, on/off, 1/0)",
  accepts: () =>
    Schema.Union(
      Schema.Boolean,
      Schema.transform(Schema.Literal(0, 1), Schema.Boolean, {
        strict: true,
        decode: (n) => n === 1,
        encode: (b) => (b ? 1 : 0)
      }),
      spelled(["1", "true", "yes", "on", "enabled"], true),
      spelled(["0", "false", "no", "off", "disabled"], false)
    ),
  tolerates: (_, fallback) => [
    {
      why: "a number, the original tool reads it as its truth value",
      schema: Schema.transform(Schema.Number.pipe(Schema.finite()), Schema.Boolean, {
        strict: true,
        decode: (n) => n !== 0,
        encode: Number
      })
    },
    fallsBack(bool.expected, fallback)
  ]
}

/**
 * A whole number `>= min` (and `<= max`, when given); the original tool runs a smaller one as `min`, and one of its
 * settings above `max` runs as with `max`.
 */
export const wholeNumber = (min: number, max?: number): ValueType => {
  const expected = max === undefined ? `a whole number >= ${min}` : `a whole number from ${min} to ${max}`
  return {
    expected,
    accepts: () =>
      max === undefined
        ? Whole.pipe(Schema.greaterThanOrEqualTo(min))
        : Whole.pipe(Schema.greaterThanOrEqualTo(min), Schema.lessThanOrEqualTo(max)),
    tolerates: (_, fallback) => [
      asNumber,
      ...(max === undefined ? [] : [
        { why: `above ${max}, it runs as with ${max}`, schema: always(max, Whole.pipe(Schema.greaterThan(max))) }
      ]),
      { why: `below ${min}, the original tool runs as with ${min}`, schema: always(min, Whole) },
      fallsBack(expected, fallback)
    ]
  }
}

/**
 * Round trips a batch keeps in flight at most: each slot costs memory and scheduling whatever the item count, and
 * `--concurrency 99999999` grew past 3 GB on a two-item batch.
 */
export const maxConcurrency = 256

/** The retry seed: any whole number; the original's fallback for others is 0, not its default (none). */
export const seed: ValueType = {
  expected: "a whole number",
  accepts: () => Whole,
  tolerates: () => [asNumber, { why: "not a whole number, the original tool falls back to 0", schema: always(0) }]
}

/**
 * A finite number. Below `floor` the original tool's delays come out as at `floor`; below `hardMin` it breaks; outside
 * `usual` it runs as written, but not as anyone expects.
 */
export const number = (
  options: { readonly floor?: number; readonly hardMin?: number; readonly usual?: readonly [number, number] }
): ValueType => {
  const { floor, hardMin, usual } = options
  const [low, high] = usual ?? [floor ?? hardMin ?? 0, Infinity]
  const expected = high === Infinity ? `a number >= ${low}` : `a number from ${low} to ${high}`
  const atLeast = floor ?? hardMin ?? -Infinity
  return {
    expected,
    accepts: () => Finite.pipe(Schema.between(Math.max(atLeast, low), high)),
    tolerates: (_, fallback) => [
      asNumber,
      { why: `not ${expected}, the original tool falls back to the default`, schema: always(fallback, other(Finite)) },
      ...(floor === undefined ? [] : [
        {
          why: `below ${floor}, the original tool's delays come out as with ${floor}`,
          schema: always(floor, Finite.pipe(Schema.lessThan(floor)))
        }
      ]),
      ...(usual === undefined ? [] : [
        {
          why: `not ${expected}, but the original tool uses it as written`,
          schema: Finite.pipe(Schema.greaterThanOrEqualTo(atLeast))
        }
      ])
    ]
  }
}

/**
 * A path, resolved against its source's folder; `null` unsets it. `original`: a key the original tool reads too, which
 * takes an empty path as unset and a relative one as relative to the working folder.
 */
export const filePath = (options: { readonly original?: boolean } = {}): ValueType => {
  const resolved = (place: Place) =>
    Schema.transform(NonEmptyText, Schema.String, {
      strict: true,
      decode: (text) => path.resolve(place.baseDir, text),
      encode: (p) => p
    })
  // Where the original tool would find another file: a relative path in a config file outside the working folder.
  const elsewhere = (place: Place) => (text: string) =>
    options.original === true && place.fromFile && !path.isAbsolute(text) &&
    path.resolve(place.baseDir, text) !== path.resolve(place.cwd, text)
  return {
    expected: "a non-empty string",
    accepts: (place) =>
      Schema.Union(
        Schema.Null,
        NonEmptyText.pipe(Schema.filter((t) => !elsewhere(place)(t)), Schema.compose(resolved(place)))
      ),
    tolerates: (place) =>
      options.original !== true ? [] : [
        { why: "empty, the original tool takes it as unset", schema: always(null, Text.pipe(Schema.length(0))) },
        {
          why: "relative to the config file's folder (the original tool: to the working folder)",
          schema: NonEmptyText.pipe(Schema.filter(elsewhere(place)), Schema.compose(resolved(place)))
        }
      ]
  }
}

export const urlExpected = "a URL: sqlite:///PATH, postgres://..., postgresql://..., mariadb://... or mysql://..."

/** The archive's URL, as text: which archive it names depends on the backend, so `Config.compose` reads it later. */
export const url: ValueType = {
  expected: urlExpected,
  accepts: () => NonEmptyText,
  tolerates: () => [],
  problem: (value) =>
    `got ${show(value)}, expected ${urlExpected}${
      typeof value !== "string" || value.trim() === "" ? " (the archive URL must be provided)" : ""
    }`
}

/** A key: never echoed in an error. */
export const secret: ValueType = {
  expected: "a non-empty string",
  accepts: () => NonEmptyText,
  tolerates: () => [],
  problem: () => "expected a non-empty string"
}

/** Every key of the document, its environment variable (spec §4.3), its type and default (spec §4.2). */
export const fields: ReadonlyArray<Field> = [
  // Ours, not the original's: makes every warning the error it would otherwise be (top-level key `strict`).
  { key: "strict", env: "CODEX_ARCHIVE_STRICT", type: bool, default: false, ours: true },
  {
    key: "backend.backend",
    env: "CODEX_ARCHIVE_BACKEND",
    type: oneOf(backendNames, { aliases: backendAliases, original: backendNames }),
    default: "sqlite"
  },
  { key: "backend.url", env: "CODEX_ARCHIVE_URL", type: url, default: defaultUrl },
  {
    key: "logging.level",
    env: "CODEX_ARCHIVE_LOG_LEVEL",
    type: oneOf(["debug", "info", "warning", "error"], {
      aliases: { warn: "warning", critical: "error", fatal: "error", notset: "debug" },
      fallback: "info"
    }),
    default: "info"
  },
  {
    key: "logging.format",
    env: "CODEX_ARCHIVE_LOG_FORMAT",
    type: oneOf(["text", "json"], { original: ["text", "json"] }),
    default: "text"
  },
  {
    key: "logging.evidence_file",
    env: "CODEX_ARCHIVE_LOG_EVIDENCE",
    type: filePath({ original: true }),
    default: null
  },
  { key: "retry.enabled", env: "CODEX_ARCHIVE_RETRY_ENABLED", type: bool, default: true },
  { key: "retry.max_attempts", env: "CODEX_ARCHIVE_RETRY_ATTEMPTS", type: wholeNumber(1), default: 5 },
  { key: "retry.initial_delay", env: "CODEX_ARCHIVE_RETRY_INITIAL", type: number({ floor: 0 }), default: 1.0 },
  { key: "retry.max_delay", env: "CODEX_ARCHIVE_RETRY_MAX", type: number({ floor: 0 }), default: 32.0 },
  {
    key: "retry.multiplier",
    env: "CODEX_ARCHIVE_RETRY_MULTIPLIER",
    type: number({ hardMin: 0, usual: [1, Infinity] }),
    default: 2.0
  },
  {
    key: "retry.jitter",
    env: "CODEX_ARCHIVE_RETRY_JITTER",
    type: number({ floor: 0, usual: [0, 1] }),
    default: 0.1
  },
  { key: "retry.seed", env: "CODEX_ARCHIVE_RETRY_SEED", type: seed, default: null },
  {
    key: "batch.concurrent",
    env: "CODEX_ARCHIVE_BATCH_CONCURRENT",
    type: wholeNumber(1, maxConcurrency),
    default: 4
  },
  { key: "batch.progress_interval", env: "CODEX_ARCHIVE_BATCH_PROGRESS", type: wholeNumber(1), default: 10 },
  {
    key: "batch.results_path",
    env: "CODEX_ARCHIVE_BATCH_RESULTS",
    type: filePath({ original: true }),
    default: null
  },
  { key: "performance.enabled", env: "CODEX_ARCHIVE_PERF_ENABLED", type: bool, default: true },
  { key: "performance.emit_to_evidence", env: "CODEX_ARCHIVE_PERF_EVIDENCE", type: bool, default: true },
  {
    key: "store.inline_limit",
    env: "CODEX_ARCHIVE_INLINE_LIMIT",
    type: wholeNumber(0),
    default: defaultInlineLimit,
    ours: true
  },
  { key: "evidence.dir", env: "CODEX_EVIDENCE_DIR", type: filePath(), default: ".codex/evidence" },
  {
    key: "evidence.hmac_key_file",
    env: "CODEX_EVIDENCE_HMAC_KEY_FILE",
    type: filePath(),
    default: null,
    ours: true
  },
  { key: "evidence.hmac_key", env: "CODEX_EVIDENCE_HMAC_KEY", type: secret, default: null }
]

export const fieldByKey: ReadonlyMap<string, Field> = new Map(fields.map((f) => [f.key, f]))
