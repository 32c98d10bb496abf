/**
 * A server backend's own path for payload bytes, beside its `SqlClient`: PostgreSQL's binary `COPY` sends `bytea` as
 * it is stored, where a `SELECT` through the driver sends text the server encodes and the client decodes twice
 * (characters, then base64). The store uses it when the backend's layer provides one (its own pool); over a host's
 * client it reads with `SELECT`s. Rows come back in the `SELECT`'s shape and are decoded and checked the same way.
 */
import type { SqlError } from "@effect/sql"
import { Context, type Effect } from "effect"

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

export const PayloadReader = Context.GenericTag<PayloadReader>("@codex-archive/core/PayloadReader")
