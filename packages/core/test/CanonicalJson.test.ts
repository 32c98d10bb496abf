import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { CanonicalJson } from "../src/index.js"

/** The definition: every object copied with its entries sorted, at every depth. */
const reference = (value: unknown): string =>
  JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v)

describe("CanonicalJson.stringify", () => {
  it("writes what sorting a copy of every object writes, for any JSON-like value", () => {
    fc.assert(
      fc.property(fc.anything({ withDate: true, withNullPrototype: true, withObjectString: true }), (value) => {
        expect(CanonicalJson.stringify(value)).toBe(reference(value))
      }),
      { numRuns: 2000 }
    )
  })

  // Integer-like keys come first in numeric order: JavaScript orders an object's keys so, sorted copy or not.
  it("sorts keys that are out of order, at every depth, and leaves inherited ones out", () => {
    const inherited = Object.create({ z: "from the prototype" }) as Record<string, unknown>
    inherited.b = 1
    inherited.a = 2
    const cases: ReadonlyArray<readonly [unknown, string]> = [
      [{ b: 1, a: { d: [{ y: 1, x: 2 }], c: undefined } }, "{\"a\":{\"d\":[{\"x\":2,\"y\":1}]},\"b\":1}"],
      [{ a: "a", 10: "ten", 9: "nine" }, "{\"9\":\"nine\",\"10\":\"ten\",\"a\":\"a\"}"],
      [inherited, "{\"a\":2,\"b\":1}"],
      [{ a: 1, b: 2 }, "{\"a\":1,\"b\":2}"],
      [{ when: new Date(0) }, "{\"when\":\"1970-01-01T00:00:00.000Z\"}"]
    ]
    for (const [value, text] of cases) {
      expect(CanonicalJson.stringify(value)).toBe(text)
      expect(reference(value)).toBe(text)
    }
  })
})
