import { describe, expect, it } from "@effect/vitest"
import { Uuid } from "../src/index.js"

describe("Uuid.v7", () => {
  it("is a version 7, RFC 9562 variant UUID carrying its millisecond time", () => {
    const at = Date.UTC(2026, 10, 26, 3, 30, 0, 123)
    const id = Uuid.v7(at)
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(parseInt(id.slice(0, 8) + id.slice(9, 13), 16)).toBe(at)
  })

  it("sorts as text in time order, and never repeats across refills of its random pool", () => {
    const ids = Array.from({ length: 2000 }, (_, i) => Uuid.v7(1_700_000_000_000 + Math.floor(i / 100)))
    expect(new Set(ids).size).toBe(ids.length)
    const times = [...ids].sort().map((id) => parseInt(id.slice(0, 8) + id.slice(9, 13), 16))
    expect(times).toEqual([...times].sort((a, b) => a - b))
  })

  it("sorts in the order it made them within one millisecond, even past 4096 ids", () => {
    const at = Date.UTC(2026, 10, 26, 9, 0, 0, 0)
    const ids = Array.from({ length: 10_000 }, () => Uuid.v7(at))
    expect(new Set(ids).size).toBe(ids.length)
    expect([...ids].sort()).toEqual(ids)
    // Past the 12-bit counter the next milliseconds are borrowed: the time stays within a few of the clock's.
    const last = ids[ids.length - 1]!
    expect(parseInt(last.slice(0, 8) + last.slice(9, 13), 16) - at).toBeLessThanOrEqual(3)
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  })
})
