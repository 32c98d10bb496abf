/**
 * Database rows as the drivers return them, decoded with Schema into what the port promises: one struct per row shape,
 * each column a transform over every driver's types. An archive is hostile input: a row that does not decode is a
 * `BadRow` naming its table, column and row id (the store reports it as a `StoreError`), never a value trusted.
 */
import { Data, Effect, Either, ParseResult, Schema, type SchemaAST } from "effect"
import { type Layout, legalHoldValue } from "../ArchiveStore.js"
import { codecOfCompression } from "../Chunking.js"
import * as Ids from "../Ids.js"
import * as Printable from "../Printable.js"
import * as Timestamp from "../Timestamp.js"

export type Row = Record<string, unknown>

const refuse = (ast: SchemaAST.AST, actual: unknown, message: string) =>
  ParseResult.fail(new ParseResult.Type(ast, actual, message))

/**
 * A column read from whatever the driver handed over; `read` returns undefined for a value it refuses. One parser node
 * per column: a declaration whose decoder is `read`.
 */
const column = <A>(
  to: Schema.Schema<A, any>,
  expected: string,
  read: (v: unknown) => A | undefined,
  show: (v: unknown) => string = shown
) => {
  const schema = Schema.declare<A, unknown, readonly []>([], {
    decode: () => (v, _, ast) => {
      const a = read(v)
      return a === undefined ? refuse(ast, v, `expected ${expected}, got ${show(v)}`) : ParseResult.succeed(a)
    },
    encode: () => (a) => ParseResult.succeed(a)
  }, { identifier: String(to.ast) })
  columns.set(schema.ast, { read, expected })
  return schema
}

/** Each column's reader, by its schema: a struct of columns compiles to one loop over them (see `decoder`). */
const columns = new WeakMap<SchemaAST.AST, { readonly read: (v: unknown) => unknown; readonly expected: string }>()

/** The column, or SQL NULL. */
const orNull = <A>(col: Schema.Schema<A, unknown>): Schema.Schema<A | null, unknown> => {
  const { expected, read } = columns.get(col.ast)!
  return column(Schema.NullOr(col), `${expected} or NULL`, (v) => (v === null ? null : read(v) as A | undefined))
}

const shown = (v: unknown): string =>
  typeof v === "string" ? JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v) : v instanceof Uint8Array
    ? `${v.length} bytes`
    : typeof v === "bigint"
    ? `${v}`
    : String(v)

/**
 * A refused payload by its type and size alone: its text is archive content (a blob read back as text), which no
 * message, evidence line or results file may carry.
 */
const shownOpaque = (v: unknown): string =>
  typeof v === "string"
    ? `text of ${Buffer.byteLength(v, "utf8")} bytes`
    : typeof v === "number"
    ? Number.isInteger(v) ? "an integer" : "a real number"
    : typeof v === "bigint"
    ? "an integer"
    : v === null
    ? "NULL"
    : typeof v

const textOf = (v: unknown): string | undefined =>
  typeof v === "string"
    ? v
    : typeof v === "number" || typeof v === "bigint"
    ? String(v)
    // pg and mysql may hand a key over as a Buffer.
    : v instanceof Uint8Array
    ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("utf8")
    : undefined

/** Text; a number or bytes (a driver's form of a key) read as text, NULL refused. */
export const Text = column(Schema.String, "text", textOf)

export const TextOrNull = orNull(Text)

/** Text a fixed-width column (`CHAR(n)`) may have padded. */
export const Trimmed = column(Schema.String, "text", (v) => textOf(v)?.trim())

/** Counts and sizes: a number, a bigint (pg `COUNT`, mysql `BIGINT`) or digits (pg `NUMERIC`, mysql `SUM`). */
const countOf = (v: unknown): number | undefined => {
  const n = typeof v === "number"
    ? v
    : typeof v === "bigint"
    ? Number(v)
    : typeof v === "string" && /^\s*\d+\s*$/.test(v)
    ? Number(v)
    : undefined
  return n !== undefined && Number.isSafeInteger(n) && n >= 0 ? n : undefined
}
export const Count = column(Schema.Number, "a non-negative integer", countOf)

/** `SUM` over no rows is NULL: zero. */
export const CountOrZero = column(Schema.Number, "a non-negative integer", (v) => (v === null ? 0 : countOf(v)))

const truthy: ReadonlySet<unknown> = new Set([true, 1, 1n, "1", "t", "true"])
const falsy: ReadonlySet<unknown> = new Set([false, 0, 0n, "0", "f", "false", null])
/** A boolean as each driver spells it: true/false (pg), 1/0 (sqlite, mysql), 't'/'f' and text of legacy rows. */
export const Flag = column(
  Schema.Boolean,
  "a boolean (0/1, t/f, true/false)",
  (v) => truthy.has(v) ? true : falsy.has(v) ? false : undefined
)

/** Dates come back as `Date` (pg, mysql) or text (sqlite, legacy rows); all leave here as `YYYY-MM-DDTHH:MM:SSZ`. */
const timestampOf = (v: unknown): string | undefined => {
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? undefined : Timestamp.format(v.getTime())
  if (typeof v !== "string") return undefined
  return /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/.test(v) ? `${v.replace(" ", "T")}Z` : v
}
export const Time = column(Schema.String, "a timestamp", timestampOf)
export const TimeOrNull = orNull(Time)

/** Bytes as the drivers give them: a Buffer (a Uint8Array) or an ArrayBuffer. */
export const Bytes = column(
  Schema.Uint8ArrayFromSelf,
  "bytes",
  (v) => v instanceof Uint8Array ? v : v instanceof ArrayBuffer ? new Uint8Array(v) : undefined,
  shownOpaque
)

/**
 * The bytes of PostgreSQL's `encode(bytes, 'base64')`, which ends every 76 characters with a line break, in a buffer of
 * their exact size: a worker takes such a buffer over whole, where a view of a larger one is copied (`WorkerPool.owned`).
 * Stripping the breaks on the server (`replace`) cost it more CPU than the encoding. Text of another shape is decoded as
 * it comes (the bytes are checked against their digest later either way).
 */
export const fromBase64Lines = (text: string): Buffer => {
  const breaks = Math.floor(text.length / 77)
  for (let at = 76; at < text.length; at += 77) if (text.charCodeAt(at) !== 10) return Buffer.from(text, "base64")
  const end = text.length - (text.endsWith("\n") ? 1 : 0)
  const pad = text.charCodeAt(end - 1) !== 61 ? 0 : text.charCodeAt(end - 2) === 61 ? 2 : 1
  const size = ((text.length - breaks) / 4) * 3 - pad
  if (!Number.isInteger(size) || size < 0) return Buffer.from(text, "base64")
  const out = Buffer.allocUnsafeSlow(size)
  return out.write(text, "base64") === size ? out : Buffer.from(text, "base64")
}

/** A JSON column: text parsed (text that is not JSON kept as text), a driver's parsed value kept, NULL as `{}`. */
export const Json = column(Schema.Unknown, "JSON", (v) => (typeof v === "string" ? parseJson(v) : v ?? {}))

export const parseJson = (v: unknown): unknown => {
  if (typeof v !== "string") return v ?? {}
  if (nestedTooDeep(v)) return v
  try {
    return JSON.parse(v)
  } catch {
    return v
  }
}

/** JSON nested deeper than this is kept as text: printing it (`JSON.stringify` recurses) would overflow the stack. */
const maxJsonDepth = 256

/** Whether JSON text opens more than `maxJsonDepth` arrays or objects at once; text too short to do so is not scanned. */
const nestedTooDeep = (text: string): boolean => {
  if (text.length <= 2 * maxJsonDepth) return false
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxJsonDepth) return true
    } else if (c === 0x5d || c === 0x7d) depth--
  }
  return false
}

/** Branded ids, read as the Ids decoders read them (surrounding blanks of a `CHAR` column dropped). */
export const TombstoneIdColumn = column(Ids.TombstoneId, "a tombstone id (a lowercase UUID)", (v) => {
  const s = textOf(v)
  return s === undefined ? undefined : Either.getOrUndefined(Ids.decodeTombstoneId(s.trim()))
})
export const Sha256Column = column(Ids.Sha256, "a sha256 (64 hex digits)", (v) => {
  const s = textOf(v)
  return s === undefined ? undefined : Either.getOrUndefined(Ids.decodeSha256(s))
})
export const ArtifactIdColumn = column(
  Ids.ArtifactId,
  "an artifact id",
  (v) => v === null || v === undefined ? undefined : Either.getOrUndefined(Ids.decodeArtifactId(v))
)

// ---- the row shapes ---------------------------------------------------------------------------------------------------

/** The artifact columns its readers select (`artifact_id` = `a.id`): what it holds and how its bytes are laid out. */
export const ArtifactRow = Schema.Struct({
  artifact_id: ArtifactIdColumn,
  content_sha256: Sha256Column,
  size_bytes: Count,
  compression: TextOrNull,
  storage_driver: Text,
  has_blob: Flag
})

/** With the bytes it stores (its chunks' when chunked). */
export const StoredArtifactRow = Schema.Struct({ ...ArtifactRow.fields, compressed_size: Count })

/** The item columns a restore needs (`item_id` = `i.id`). */
export const LocatedItemRow = Schema.Struct({
  item_id: Text,
  tombstone_id: TombstoneIdColumn,
  repo: Text,
  path: Text,
  metadata: Json
})

/** An item as `list` shows it. */
export const ItemRow = Schema.Struct({
  id: Text,
  repo: Text,
  path: Text,
  commit_sha: Trimmed,
  reason: Text,
  archived_by: Text,
  archived_at: Time,
  tombstone_id: TombstoneIdColumn
})

/** Every column of an item (`SELECT *`). */
export const ItemDetailRow = Schema.Struct({
  ...ItemRow.fields,
  language: TextOrNull,
  kind: Text,
  artifact_id: ArtifactIdColumn,
  metadata: Json,
  legal_hold: Flag,
  delete_after: TimeOrNull,
  restored_at: TimeOrNull
})

/** What `show` reads of an artifact. */
export const ArtifactDetailRow = Schema.Struct({
  ...StoredArtifactRow.fields,
  mime_type: Text,
  object_url: TextOrNull
})

/** What `verify` lists of an artifact: with each of its items' tombstone, and its chunk rows' count. */
export const VerifiedArtifactRow = Schema.Struct({
  ...ArtifactRow.fields,
  tombstone_id: orNull(TombstoneIdColumn),
  /** Its item's metadata (NULL, `{}`, without one): the digest the item records (`recordedSha256`). */
  metadata: Json,
  chunk_rows: Count,
  object_url: TextOrNull,
  compressed_size: Count
})

/** An artifact a store finds already there (deduplicated, or purged and re-hydrated). */
export const ExistingRow = Schema.Struct({
  id: ArtifactIdColumn,
  storage_driver: Text,
  has_blob: Flag,
  compressed_size: Count
})
export const ExistingByShaRow = Schema.Struct({ ...ExistingRow.fields, content_sha256: Sha256Column })

export const EventRow = Schema.Struct({ action: Text, actor: Text, context: Json, created_at: Time })
export const PurgeEventRow = Schema.Struct({ artifact_id: Text, context: Json })
export const TagRow = Schema.Struct({ tag: Text })
export const CountRow = Schema.Struct({ n: Count })
/** Chunk rows no chunked artifact claims, per artifact id: how many, and their bytes. */
export const OrphanRow = Schema.Struct({ artifact_id: Text, n: Count, b: CountOrZero })

/** One `artifact_chunk` row: its place in the artifact and its compressed bytes. */
export const ChunkRow = Schema.Struct({ seq: Count, blob_bytes: Bytes })

export const InlineRow = Schema.Struct({ id: ArtifactIdColumn, blob_bytes: Bytes })

// ---- decoding -------------------------------------------------------------------------------------------------------

/** A row the archive holds that is not what its schema promises: refused, naming where it is. */
export class BadRow extends Data.TaggedError("BadRow")<{
  readonly table: string
  readonly column: string
  readonly id: string
  readonly detail: string
}> {
  override get message() {
    return `table ${this.table}, row ${this.id}: column ${this.column}: ${this.detail}`
  }
}

export interface RowDecoder<A> {
  /** One row; `id` names it when its own columns do not (a chunk's artifact and seq). */
  (row: Row, id?: string): Either.Either<A, BadRow>
}

/**
 * The decoder of one row shape, compiled once. A struct of columns decodes in one loop over their readers, and only a
 * row one of them refuses goes through Schema's parser, for its error: the parser's own walk cost ~7 µs a located row
 * (two structs, 16 columns), ~0.7 s per 100k rows of a batch restore, where the loop costs well under 1 µs.
 * `idColumns`: the columns that name the row in an error, the first present wins; `joined`: columns a join brought in
 * from another table, named in an error as that table's, by its own id columns.
 */
export const decoder = <A, I>(
  table: string,
  schema: Schema.Schema<A, I>,
  idColumns: ReadonlyArray<string>,
  joined?: {
    readonly table: string
    readonly columns: ReadonlyArray<string>
    readonly idColumns: ReadonlyArray<string>
  }
): RowDecoder<A> => {
  const decode = Schema.decodeUnknownEither(schema)
  const fast = readerOf<A>(schema.ast)
  return (row, id) => {
    const a = fast?.(row)
    return a !== undefined ? Either.right(a) : Either.mapLeft(decode(row), (error) => {
      const [issue] = ParseResult.ArrayFormatter.formatErrorSync(error)
      const column = issue === undefined || issue.path.length === 0 ? "?" : issue.path.map(String).join(".")
      const other = joined?.columns.includes(column) === true ? joined : undefined
      return new BadRow({
        table: other?.table ?? table,
        column,
        id: id ?? idOf(row, other?.idColumns ?? idColumns),
        detail: issue?.message ?? error.message
      })
    })
  }
}

/** A struct whose every field is a column: its rows read in one loop, undefined for a row a column refuses. */
const readerOf = <A>(ast: SchemaAST.AST): ((row: Row) => A | undefined) | undefined => {
  if (ast._tag !== "TypeLiteral" || ast.indexSignatures.length > 0) return undefined
  const fields = ast.propertySignatures.map((p) => [p.name as string, columns.get(p.type)?.read] as const)
  if (ast.propertySignatures.some((p) => p.isOptional) || fields.some(([, read]) => read === undefined)) {
    return undefined
  }
  return (row) => {
    const out: Record<string, unknown> = {}
    for (const [name, read] of fields) {
      const v = read!(row[name])
      if (v === undefined) return undefined
      out[name] = v
    }
    return out as A
  }
}

const idOf = (row: Row, columns: ReadonlyArray<string>): string => {
  for (const c of columns) {
    const v = textOf(row[c])
    // The id is archive text too: a message carrying it must not carry a terminal sequence.
    if (v !== undefined && v !== "") return Printable.escape(v.trim())
  }
  return "(no id)"
}

/** Every row decoded, or the first that does not decode. */
export const decodeAll = <A>(decode: RowDecoder<A>, rows: ReadonlyArray<Row>): Effect.Effect<Array<A>, BadRow> =>
  Effect.suspend(() => {
    const out = new Array<A>(rows.length)
    for (let i = 0; i < rows.length; i++) {
      const r = decode(rows[i]!)
      if (Either.isLeft(r)) return Effect.fail(r.left)
      out[i] = r.right
    }
    return Effect.succeed(out)
  })

// ---- derived facts ----------------------------------------------------------------------------------------------------

/** Dates as the port shows them; kept for callers outside the store. */
export const toTimestamp = (v: unknown): string | null =>
  v === null || v === undefined ? null : timestampOf(v) ?? String(v)

export const modeOf = (metadata: unknown): number | null => {
  const mode = (metadata as { file_mode?: unknown } | null)?.file_mode
  return typeof mode === "string" && /^0?[0-7]{3,4}$/.test(mode) ? parseInt(mode, 8) : null
}

/** `legal_hold` from metadata, coerced as the original does: bool/number truthiness or 1/true/yes/on. */
export const legalHoldOf = (v: unknown): boolean => legalHoldValue(v) ?? false

/** A chunked artifact keeps a marker in `blob_bytes` (so the original never calls it purged): the driver decides. */
export const layoutOf = (row: { readonly storage_driver: string; readonly has_blob: boolean }): Layout =>
  row.storage_driver === "chunked" ? "chunked" : row.has_blob ? "inline" : "purged"

export const codecOf = (compression: string | null): string | null =>
  compression === null ? null : codecOfCompression(compression)
