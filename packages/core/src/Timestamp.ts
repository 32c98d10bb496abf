/** Timestamps in the spec's format: UTC, second precision, `YYYY-MM-DDTHH:MM:SSZ`; elapsed times by the Effect clock. */
import { Clock, Effect } from "effect"

export const format = (millis: number): string => new Date(millis).toISOString().replace(/\.\d{3}Z$/, "Z")

export const now: Effect.Effect<string> = Effect.map(Clock.currentTimeMillis, format)

/**
 * Milliseconds since `start`, a reading of `clock.unsafeCurrentTimeNanos()`: the Effect clock, so tests control the
 * time; read synchronously, so a timing inside a loop costs no effect.
 */
export const elapsedMs = (clock: Clock.Clock, start: bigint): number =>
  Number(clock.unsafeCurrentTimeNanos() - start) / 1e6
