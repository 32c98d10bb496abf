/**
 * The CLI alone decides wording and exit codes: 2 for bad usage or bad input (nothing was attempted), 1 for an
 * operation that failed. Every failure is one line on stderr that names the input and the problem.
 */
import { Printable, Redact } from "@codex-archive/core"
import * as ValidationError from "@effect/cli/ValidationError"

/** Failures caused by what the user typed or supplied, rather than by the archive or the file system. */
const badInput = new Set([
  "ConfigError",
  "InputError",
  "InvalidSha256",
  "InvalidTombstone",
  "MalformedStub",
  "ManifestError"
])

/** @effect/cli's own usage errors (unknown option, missing argument, bad choice): it has already printed them. */
export const isUsageError = (error: unknown): boolean => ValidationError.isValidationError(error)

export const codeOf = (error: unknown): 1 | 2 => {
  if (isUsageError(error)) return 2
  const tag = (error as { _tag?: string } | null)?._tag
  if (tag === "CliExit") return (error as { code: 1 | 2 }).code
  return tag !== undefined && badInput.has(tag) ? 2 : 1
}

export const messageOf = (error: unknown): string => {
  const message = error instanceof Error || (typeof error === "object" && error !== null && "message" in error)
    ? String((error as { message: unknown }).message)
    : String(error)
  // One line, whatever a driver put in its message, and never a credential.
  return Printable.escape(Redact.text(message.split("\n").map((l) => l.trim()).filter(Boolean).join(" ")))
}
