/**
 * A server backend's own path for payload bytes, beside its `SqlClient`: PostgreSQL's binary `COPY` sends `bytea` as
 * it is stored, where a `SELECT` through the driver sends text the server encodes and the client decodes twice
 * (characters, then base64). A backend attaches one to the client it made (its own pool); a store over that very
 * client reads payloads with it, a store over any other client (a host's) with `SELECT`s. Tied to the client object,
 * not put in the context: a host's context may hold the archive's client beside its own, and a store over the host's
 * client must never read through the other's pool. Rows come back in the `SELECT`'s shape and are checked the same way.
 */
import type { SqlClient, SqlError } from "@effect/sql"
import type { Effect } from "effect"

export interface PayloadReader {
  /** `{ id, blob_bytes }` of each artifact among `ids` whose inline bytes are not NULL. */
  readonly inline: (
    ids: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyArray<Record<string, unknown>>, SqlError.SqlError>
  /** `{ seq, blob_bytes }` of the artifact's chunk rows from `seq` `from` on, in order, at most `limit`. */
  readonly chunks: (
    artifactId: string,
    from: number,
    limit: number
  ) => Effect.Effect<ReadonlyArray<Record<string, unknown>>, SqlError.SqlError>
}

const readers = new WeakMap<SqlClient.SqlClient, PayloadReader>()

/** Ties `reader` to `client`, which the backend made: a store over that client reads payloads with it. */
export const attach = (client: SqlClient.SqlClient, reader: PayloadReader): void => void readers.set(client, reader)

/** The reader tied to `client`, if its backend attached one. */
export const of = (client: SqlClient.SqlClient): PayloadReader | undefined => readers.get(client)
