/**
 * The ids that cross our boundaries, as branded strings: a `TombstoneId` (UUID v4, the handle of one archived file),
 * a `Sha256` (lowercase hex of the uncompressed bytes) and an `ArtifactId` (the key of one stored payload). Each has
 * one decoder that normalises its input and owns the error a bad value gets, so a check is never written twice.
 */
import { Data, Either, ParseResult, Schema, type SchemaAST as AST } from "effect"

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** Canonical 36-character lowercase hyphenated UUID. */
export const TombstoneId = Schema.String.pipe(Schema.pattern(uuid), Schema.brand("TombstoneId"))
export type TombstoneId = typeof TombstoneId.Type

const hex64 = /^[0-9a-f]{64}$/

/** 64 lowercase hex digits. */
export const Sha256 = Schema.String.pipe(Schema.pattern(hex64), Schema.brand("Sha256"))
export type Sha256 = typeof Sha256.Type

/** Whatever key the artifact table gave a payload (a UUID of ours, any non-empty text of the original's). */
export const ArtifactId = Schema.String.pipe(Schema.minLength(1), Schema.brand("ArtifactId"))
export type ArtifactId = typeof ArtifactId.Type

/** A refused value as its error shows it: a manifest's 40 kB "tombstone" would otherwise be the whole line. */
const clipped = (value: string): string => (value.length > 80 ? `${value.slice(0, 80)}…` : value)

export class InvalidTombstone extends Data.TaggedError("InvalidTombstone")<{ readonly tombstone: string }> {
  override get message() {
    return `'${
      clipped(this.tombstone)
    }' is not a tombstone id (expected a UUID like 3f2c1a9e-8b7d-4c6e-9f00-1a2b3c4d5e6f)`
  }
}

export class InvalidSha256 extends Data.TaggedError("InvalidSha256")<{ readonly sha256: string }> {
  override get message() {
    return `'${clipped(this.sha256)}' is not a sha256 (expected 64 hex digits)`
  }
}

export class InvalidArtifactId extends Data.TaggedError("InvalidArtifactId")<{ readonly artifactId: string }> {
  override get message() {
    return `'${clipped(this.artifactId)}' is not an artifact id (expected non-empty text)`
  }
}

// The schemas' own checks, tested directly: `Schema.is` walks the parser (~3 µs a call, 10x the regex), and a batch
// restore decodes three ids in each of its ~100k database rows.
const isTombstone = (id: string): id is TombstoneId => uuid.test(id)
const isSha = (digest: string): digest is Sha256 => hex64.test(digest)
const isArtifact = (id: string): id is ArtifactId => id.length > 0

/** Upper case and surrounding blanks are accepted (a pasted id); the error keeps the value as given. */
export const decodeTombstoneId = (value: string): Either.Either<TombstoneId, InvalidTombstone> => {
  const id = value.trim().toLowerCase()
  return isTombstone(id) ? Either.right(id) : Either.left(new InvalidTombstone({ tombstone: value }))
}

export const decodeSha256 = (value: string): Either.Either<Sha256, InvalidSha256> => {
  const digest = value.trim().toLowerCase()
  return isSha(digest) ? Either.right(digest) : Either.left(new InvalidSha256({ sha256: value }))
}

/** A database key as read back: pg and mysql may hand over a number or a Buffer-backed UUID, so it is text here. */
export const decodeArtifactId = (value: unknown): Either.Either<ArtifactId, InvalidArtifactId> => {
  const id = value === null || value === undefined ? "" : String(value)
  return isArtifact(id) ? Either.right(id) : Either.left(new InvalidArtifactId({ artifactId: id }))
}

/**
 * A decoder as a Schema transformation from text, for documents that carry ids (a stub's fields, a manifest entry, a
 * results file): its error is the message. The target is the bare brand: the decoder has checked the pattern,
 * and checking it again cost a manifest of a million entries seconds.
 */
const viaDecoder =
  <A, E extends { readonly message: string }>(decode: (value: string) => Either.Either<A, E>) =>
  (value: string, _: AST.ParseOptions, ast: AST.AST) =>
    Either.mapLeft(decode(value), (e) => new ParseResult.Type(ast, value, e.message))

/** Text to a `TombstoneId` through `decodeTombstoneId`. */
export const TombstoneIdFromString: Schema.Schema<TombstoneId, string> = Schema.transformOrFail(
  Schema.String,
  Schema.String.pipe(Schema.brand("TombstoneId")),
  { strict: true, decode: viaDecoder(decodeTombstoneId), encode: ParseResult.succeed }
)

/** Text to a `Sha256` through `decodeSha256`. */
export const Sha256FromString: Schema.Schema<Sha256, string> = Schema.transformOrFail(
  Schema.String,
  Schema.String.pipe(Schema.brand("Sha256")),
  { strict: true, decode: viaDecoder(decodeSha256), encode: ParseResult.succeed }
)
