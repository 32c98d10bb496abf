/** Timestamps in the spec's format: UTC, second precision, `YYYY-MM-DDTHH:MM:SSZ`. */
import { Clock, Effect } from "effect"

export const format = (millis: number): string => new Date(millis).toISOString().replace(/\.\d{3}Z$/, "Z")

export const now: Effect.Effect<string> = Effect.map(Clock.currentTimeMillis, format)
