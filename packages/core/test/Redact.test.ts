import { describe, expect, it } from "@effect/vitest"
import { Redact } from "../src/index.js"

describe("Redact", () => {
  it("replaces the whole userinfo of a URL (spec §4.5)", () => {
    expect(Redact.url("postgresql://user:pass@host:5432/db")).toBe("postgresql://***@host:5432/db")
    expect(Redact.url("postgres://user@localhost/db")).toBe("postgres://***@localhost/db")
    expect(Redact.url("sqlite:///./.codex/archive.sqlite")).toBe("sqlite:///./.codex/archive.sqlite")
    expect(Redact.url("")).toBe("")
  })

  it("redacts URLs inside free text and known secrets anywhere", () => {
    expect(Redact.text("failed: mysql://root:pw@10.0.0.1:3306/x timed out")).toBe("failed: mysql://***@10.0.0.1:3306/x timed out")
    expect(Redact.secrets("password s3cret rejected", ["s3cret"])).toBe("password *** rejected")
  })

  it("shows the display convention", () => {
    expect(Redact.display("postgres://u:p@h/d")).toBe("postgres://***@h/d (credentials redacted)")
    expect(Redact.display(undefined)).toBe("<not set>")
  })
})
