/**
 * Payload bytes through `COPY (SELECT ...) TO STDOUT (FORMAT binary)`: the server sends `bytea` as stored, where a
 * `SELECT` through `pg` costs the server a base64 encoding and the client a UTF-8 decoding of that text (the driver
 * decodes every field as text) and a base64 decoding after it. On the large corpus's batch restore that was ~40% of the
 * CPU of both. Used over the archive's own pool only (`PgArchive.client`); a host's client gets `SELECT`s.
 */
import type { PayloadReader } from "@codex-archive/core"
import { SqlError } from "@effect/sql"
import { Effect } from "effect"
import Pg from "pg"

/** How a column of the copied rows is read: text (ids, numbers cast to text) or bytes, each on a buffer of its own. */
type Kind = "text" | "bytes"

const signature = Buffer.from("PGCOPY\n\xff\r\n\0", "latin1")
const headerSize = signature.length + 8

/**
 * The binary COPY format's rows (header, then per row a field count and each field's length and bytes, then -1), from
 * the CopyData messages as they come. PostgreSQL sends a row per message; a row split across messages is put together.
 * Field views are valid only inside `onRow`: the driver reuses its buffer.
 */
export class BinaryRows {
  private pending: Buffer | undefined
  private headerRead = false
  private ended = false

  constructor(private readonly onRow: (fields: ReadonlyArray<Buffer | null>) => void) {}

  /** Takes one message's bytes; fails with a message when they are not binary COPY rows. */
  push(chunk: Buffer): string | undefined {
    const data = this.pending === undefined ? chunk : Buffer.concat([this.pending, chunk])
    this.pending = undefined
    let at = 0
    if (!this.headerRead) {
      const seen = Math.min(data.length, signature.length)
      if (!data.subarray(0, seen).equals(signature.subarray(0, seen))) {
        return "not binary COPY data (no PGCOPY signature)"
      }
      if (data.length < headerSize) return this.keep(data, 0)
      const extension = data.readUInt32BE(signature.length + 4)
      if (data.length < headerSize + extension) return this.keep(data, 0)
      at = headerSize + extension
      this.headerRead = true
    }
    while (at < data.length) {
      if (this.ended) return "bytes after the end of the COPY data"
      if (data.length - at < 2) return this.keep(data, at)
      const count = data.readInt16BE(at)
      if (count === -1) {
        this.ended = true
        at += 2
        continue
      }
      if (count < 0) return `a row of ${count} fields`
      const fields: Array<Buffer | null> = []
      let p = at + 2
      for (let i = 0; i < count; i++) {
        if (data.length - p < 4) return this.keep(data, at)
        const size = data.readInt32BE(p)
        p += 4
        if (size === -1) {
          fields.push(null)
          continue
        }
        if (size < 0) return `a field of ${size} bytes`
        if (data.length - p < size) return this.keep(data, at)
        fields.push(data.subarray(p, p + size))
        p += size
      }
      this.onRow(fields)
      at = p
    }
    return undefined
  }

  /** Whether the trailer came, with nothing half read before it. */
  get complete(): boolean {
    return this.ended && this.pending === undefined
  }

  private keep(data: Buffer, from: number): undefined {
    this.pending = Buffer.from(data.subarray(from))
    return undefined
  }
}

/** A `pg` submittable running one `COPY ... TO STDOUT` by the simple query protocol, its data handed to `rows`. */
class CopyOut {
  private failure: Error | undefined
  private done = false

  constructor(
    private readonly text: string,
    private readonly rows: BinaryRows,
    private readonly callback: (error: Error | undefined) => void
  ) {}

  submit(connection: { query: (text: string) => void }) {
    connection.query(this.text)
  }
  handleCopyData(message: { chunk: Buffer }) {
    if (this.failure !== undefined) return
    const wrong = this.rows.push(message.chunk)
    if (wrong !== undefined) this.failure = new Error(`COPY returned malformed data: ${wrong}`)
  }
  // The driver clears its active query before an error reaches it: no ReadyForQuery follows for this one.
  handleError(error: Error) {
    this.finish(error)
  }
  handleReadyForQuery() {
    this.finish(
      this.failure ?? (this.rows.complete ? undefined : new Error("COPY returned malformed data: no end of data"))
    )
  }
  handleCommandComplete() {}
  handleRowDescription() {}
  handleDataRow() {}
  handleEmptyQuery() {}
  handlePortalSuspended() {}
  handleCopyInResponse(connection: { sendCopyFail: (reason: string) => void }) {
    connection.sendCopyFail("codex-archive sends no COPY data")
  }

  private finish(error: Error | undefined) {
    if (this.done) return
    this.done = true
    this.callback(error)
  }
}

/** A field as `kind`: text decoded, bytes copied onto a buffer of their own (a worker takes it over whole). */
const read = (field: Buffer | null, kind: Kind): string | Buffer | null => {
  if (field === null) return null
  if (kind === "text") return field.toString("utf8")
  const own = Buffer.allocUnsafeSlow(field.length)
  field.copy(own)
  return own
}

/**
 * Whether a connection is still good after a COPY failed with `error`: after the server's ERROR (the statement failed,
 * the session goes on) or data we refused, yes; after a FATAL (the server ended the session) or a broken socket, the
 * pool must drop it.
 */
const stillUsable = (error: Error): boolean =>
  error instanceof Pg.DatabaseError ? error.severity === "ERROR" : error.message.startsWith("COPY returned")

/** The rows of `COPY (query) TO STDOUT (FORMAT binary)` on a connection of `pool`, as objects of `columns`. */
export const copyRows = (
  pool: Pg.Pool,
  query: string,
  columns: ReadonlyArray<readonly [name: string, kind: Kind]>
): Effect.Effect<ReadonlyArray<Record<string, unknown>>, SqlError.SqlError> =>
  Effect.async<ReadonlyArray<Record<string, unknown>>, SqlError.SqlError>((resume) => {
    const out: Array<Record<string, unknown>> = []
    const rows = new BinaryRows((fields) => {
      const row: Record<string, unknown> = {}
      // A row of other columns than asked is malformed: its missing fields read as null and fail the row's check.
      columns.forEach(([name, kind], i) => (row[name] = read(fields[i] ?? null, kind)))
      out.push(row)
    })
    pool.connect((connectError, client, release) => {
      if (connectError !== undefined || client === undefined) {
        resume(Effect.fail(new SqlError.SqlError({ cause: connectError, message: "Failed to acquire connection" })))
        return
      }
      // A socket that ends without a word from the server is told to the client's listeners before the COPY hears of
      // it (handleError): unheard, that error event ended the process. pg-pool listens only while a client is idle.
      const onError = () => {}
      client.on("error", onError)
      client.query(
        new CopyOut(`COPY (${query}) TO STDOUT (FORMAT binary)`, rows, (error) => {
          client.off("error", onError)
          release(error === undefined || stillUsable(error) ? undefined : error)
          resume(
            error === undefined
              ? Effect.succeed(out)
              : Effect.fail(new SqlError.SqlError({ cause: error, message: "Failed to execute statement" }))
          )
        }) as unknown as Pg.QueryConfig
      )
    })
  })

/** Values of a `COPY` query, where no parameters can be bound: each one quoted as a literal. */
const literals = (values: ReadonlyArray<string>) => values.map(Pg.escapeLiteral).join(", ")

/** The store's payload reads over `pool` (the archive's own), by binary COPY. */
export const reader = (pool: Pg.Pool): PayloadReader.PayloadReader => ({
  inline: (ids) =>
    ids.length === 0 ? Effect.succeed([]) : copyRows(
      pool,
      `SELECT id::text, blob_bytes FROM artifact WHERE id IN (${literals(ids)}) AND blob_bytes IS NOT NULL`,
      [["id", "text"], ["blob_bytes", "bytes"]]
    ),
  chunks: (artifactId, from, limit) =>
    copyRows(
      pool,
      // Ordered by the column, not by the text it is sent as (ORDER BY seq would sort "10" before "2").
      `SELECT seq::text, blob_bytes FROM artifact_chunk WHERE artifact_id = ${Pg.escapeLiteral(artifactId)} ` +
        `AND seq >= ${Math.trunc(from)} ORDER BY artifact_chunk.seq LIMIT ${Math.trunc(limit)}`,
      [["seq", "text"], ["blob_bytes", "bytes"]]
    )
})
