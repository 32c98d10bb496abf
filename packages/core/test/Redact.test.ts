import { describe, expect, it } from "@effect/vitest"
import { Redact } from "../src/index.js"
import { hostileUrls, leaksIn } from "./HostileUrls.js"

describe("Redact", () => {
  it("replaces the whole userinfo of a URL (spec §4.5)", () => {
    expect(Redact.url("postgresql://user:pass@host:5432/db")).toBe("postgresql://***@host:5432/db")
    expect(Redact.url("postgres://user@localhost/db")).toBe("postgres://***@localhost/db")
    expect(Redact.url("sqlite:///./.codex/archive.sqlite")).toBe("sqlite:///./.codex/archive.sqlite")
    expect(Redact.url("")).toBe("")
  })

  it("redacts URLs inside free text and known secrets anywhere", () => {
    expect(Redact.text("failed: mysql://root:pw@10.0.0.1:3306/x timed out")).toBe(
      "failed: mysql://***@10.0.0.1:3306/x timed out"
    )
    expect(Redact.secrets("password s3cret rejected", ["s3cret"])).toBe("password *** rejected")
  })

  it("redacts secret settings in free text, also nested in an encoded options value", () => {
    expect(Redact.text("host=h password=pw1 user=u")).toBe("host=h password=*** user=u")
    expect(Redact.text("options=-c%20password%3Dpw2%20-c%20search_path%3Dx&sslmode=require"))
      .toBe("options=-c%20password%3D***%20-c%20search_path%3Dx&sslmode=require")
    expect(Redact.text("sha256=abc size_bytes=5 PGPASSWORD=pw3")).toBe("sha256=abc size_bytes=5 PGPASSWORD=***")
    // Encoded only, no `=` anywhere: text without a plain `=` is still scanned for an encoded one.
    expect(Redact.text("-c%20password%3dpw4%20x")).toBe("-c%20password%3d***%20x")
  })

  it("shows the display convention", () => {
    expect(Redact.display("postgres://u:p@h/d")).toBe("postgres://***@h/d (credentials redacted)")
    expect(Redact.display(undefined)).toBe("<not set>")
  })

  it("redacts secret query parameters and keeps the rest of the URL readable", () => {
    expect(Redact.url("postgres://h:5432/db?sslmode=require&sslpassword=x1&PASSWORD=x2&password=x3"))
      .toBe("postgres://h:5432/db?sslmode=require&sslpassword=***&PASSWORD=***&password=***")
    expect(Redact.url("postgres://h/db?options=-c%20password%3Dx&application_name=app"))
      .toBe("postgres://h/db?options=***&application_name=app")
    expect(Redact.url("postgres://u:p@[::1]:5432/db")).toBe("postgres://***@[::1]:5432/db")
    // Nothing secret: unchanged, so `display` adds no marker.
    const plain = "postgres://[::1]:5432/db?sslmode=require&application_name=a"
    expect(Redact.display(plain)).toBe(plain)
    expect(Redact.url("sqlite:////srv/a@b/archive.sqlite")).toBe("sqlite:////srv/a@b/archive.sqlite")
    expect(Redact.url("sqlite:////srv/My Files#2/a.sqlite")).toBe("sqlite:////srv/My Files#2/a.sqlite")
  })

  it("redacts the whole authority and query of a URL it cannot read the way a driver would", () => {
    expect(Redact.url("postgres://u:p/ss@host:5432/db")).toBe("postgres://***@host:5432/db")
    // An `@` in a secret parameter does not end the user part: the host shown is the host, not part of a password.
    expect(Redact.url("pg://u:p x@h/db?password=p x@tail")).toBe("pg://***@h/db?***")
    expect(Redact.url("postgres://u:p ss#x@host/db?sslmode=require")).toBe("postgres://***@host/db?***")
    expect(Redact.text("cannot open postgres://u:p ss@host/db: refused"))
      .toBe("cannot open postgres://***@host/db: refused")
    // A quoted URL (as config errors show a value) runs to its closing quote.
    expect(Redact.text("got 'pg://u:p x@h/db?password=a b', expected")).toBe("got 'pg://***@h/db?***', expected")
  })

  it("redacts the user part of a URL whose scheme lacks its `//` (a typo still carries the password)", () => {
    expect(Redact.url("postgresql:/u:Pw-lone-slash@127.0.0.1/db")).toBe("postgresql:/***@127.0.0.1/db")
    expect(Redact.url("postgres:u:Pw-no-slash@h/db")).toBe("postgres:***@h/db")
    expect(Redact.url("postgres//u:Pw-no-colon@h/db")).toBe("***@h/db")
    expect(Redact.url("u:Pw-bare@h/db?sslmode=require")).toBe("u:***@h/db?***")
    expect(Redact.display("postgres:u:Pw-no-slash@h/db")).toBe("postgres:***@h/db (credentials redacted)")
    // A path is a path, `@` and all.
    expect(Redact.url("/srv/a@b/archive.sqlite")).toBe("/srv/a@b/archive.sqlite")
  })

  it("hides the value of a secret `key = 'value'` as configuration warnings quote it, quotes inside and all", () => {
    expect(Redact.text("client.password = 'Pw-top' from /x/archive.toml:3: not a known key; ignored")).toBe(
      "client.password = '***' from /x/archive.toml:3: not a known key; ignored"
    )
    expect(Redact.text("a.api_key = 'it's a key' from f:1: x\nretry.attempts = '5' from f:2: y")).toBe(
      "a.api_key = '***' from f:1: x\nretry.attempts = '5' from f:2: y"
    )
    expect(Redact.text("db.token = 'unclosed")).toBe("db.token = '***")
    expect(Redact.text("logging.level = 'debug' from f:1")).toBe("logging.level = 'debug' from f:1")
  })

  it("derives no secrets from a URL without credentials", () => {
    expect(Redact.secretsOf("sqlite:///./.codex/archive.sqlite")).toEqual([])
    expect(Redact.secretsOf("postgres://u@h:5432/db?sslmode=require")).toEqual([])
    expect(Redact.secretsOf("s3cret")).toContain("s3cret")
    // A password that is also the scheme shows anyway; scrubbing it would turn every `postgres` into `***`.
    expect(Redact.secretsOf("postgres://postgres:postgres@h/db")).not.toContain("postgres")
  })

  describe("hostile URLs leak through no function", () => {
    for (const row of hostileUrls) {
      it(row.name, () => {
        const secrets = Redact.secretsOf(row.url)
        const channels = [
          Redact.url(row.url),
          Redact.display(row.url),
          Redact.text(`cannot connect to ${row.url}: refused`),
          Redact.text(`{"url":"${row.url}","detail":"x"}`),
          // A driver that echoes the password without its URL, raw or decoded.
          ...row.secrets.map((s) =>
            Redact.secrets(`authentication failed for '${s}' (${encodeURIComponent(s)})`, secrets)
          )
        ]
        for (const out of channels) expect(leaksIn(out, row), out).toEqual([])
        expect(Redact.display(row.url)).toContain("(credentials redacted)")
      })
    }
  })
})
