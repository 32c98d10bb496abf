/**
 * A server backend's URL read into its parts, the one place: the backends connect with them and the CLI refuses a
 * URL they cannot use before any driver loads. A problem is one sentence that never quotes the password (nor any
 * part's text but a numeric port and a query parameter's name), for the caller to put after the redacted URL.
 */
import { Either, Redacted } from "effect"
import * as RecordSchema from "./internal/RecordSchema.js"

/** What a backend accepts: the schemes, how its errors name it, and whether a database must be named. */
export interface Kind {
  readonly name: string
  readonly scheme: RegExp
  readonly expected: string
  /** The form to show when the database is missing; `undefined` when the backend has a default. */
  readonly databaseExpected?: string | undefined
  /**
   * The query parameters its driver takes as options; any other is refused. `undefined`: the driver ignores the ones
   * it does not know, quietly (pg).
   */
  readonly params?: { readonly driver: string; readonly options: ReadonlyMap<string, Check> } | undefined
}

export const postgres: Kind = {
  name: "PostgreSQL",
  scheme: /^postgres(ql)?$/i,
  expected: "postgres:// or postgresql://"
}

/**
 * A query value as the legacy DAL passes it on: numbers, booleans and JSON objects typed, the rest as text. What the
 * backends give their driver, and what a parameter's check looks at.
 */
export const paramValue = (value: string): unknown => {
  try {
    return JSON.parse(value)
  } catch {
    return value
  }
}

/** A parameter's check: what is wrong with its value (never quoting it: it may be a secret), or `undefined`. */
export type Check = (value: unknown) => string | undefined

const whole = (min: number, unit: string): Check => (v) =>
  typeof v === "number" && Number.isInteger(v) && v >= min && v <= 2147483647
    ? undefined
    : `must be a whole number of ${unit} from ${min} to 2147483647`
const flag: Check = (v) => (typeof v === "boolean" ? undefined : "must be true or false")
const text: Check = (v) => (typeof v === "string" && v !== "" ? undefined : "must be a non-empty text")
const object: Check = (v) =>
  typeof v === "object" && v !== null && !Array.isArray(v) ? undefined : "must be a JSON object"
// Another charset (`latin1`) stored a path's UTF-8 as other characters, and `verify` found nothing wrong.
const utf8mb4: Check = (v) =>
  typeof v === "string" && /^utf8mb4(?:_[a-z0-9]+)*$/i.test(v)
    ? undefined
    : "must be utf8mb4 or one of its collations (the archive's text is UTF-8)"

/**
 * The mysql2 options a URL may set, with what each takes: how to reach and talk to the server. Others mysql2 takes are
 * refused with the unknown ones (mysql2 warned about those on stderr, a second line beside a command's one error
 * line): the URL's own parts (`host`, `user`, `password`...), what shapes the text and rows the archive reads and
 * writes (`typeCast`, `dateStrings`, `rowsAsArray`, `timezone`...; `charset` only as UTF-8), what only code can give
 * (`stream`, `infileStreamFactory`...), and what weakens the connection (`flags`, `multipleStatements`,
 * `insecureAuth`, `enableCleartextPlugin`). A value is checked
 * too: mysql2 failed later on `ssl=true`, in words that named no parameter, or took `connectTimeout=abc` silently.
 */
const mysql2Options: ReadonlyMap<string, Check> = new Map([
  ["charset", utf8mb4],
  ["compress", flag],
  ["connectAttributes", object],
  ["connectTimeout", whole(0, "milliseconds")],
  ["enableKeepAlive", flag],
  ["idleTimeout", whole(0, "milliseconds")],
  ["keepAliveInitialDelay", whole(0, "milliseconds")],
  ["localAddress", text],
  ["maxPreparedStatements", whole(1, "statements")],
  ["queueLimit", whole(0, "requests")],
  ["socketPath", text],
  ["ssl", object],
  ["waitForConnections", flag]
])

/** `mariadb:`, `mysql:` and SQLAlchemy's `mysql+pymysql:` forms (spec §2.4). */
export const mariadb: Kind = {
  name: "MariaDB",
  scheme: /^(mariadb|mysql)(\+[a-z0-9]+)?$/i,
  expected: "mysql:// or mariadb://",
  databaseExpected: "mysql://host:3306/DATABASE",
  params: { driver: "mysql2", options: mysql2Options }
}

export const kinds = { postgres, mariadb } as const

/** The decoded parts; absent ones are `""` / `undefined`, for each backend to default as its driver does. */
export interface Parts {
  readonly host: string
  readonly port: number | undefined
  readonly database: string
  readonly user: string | undefined
  readonly password: Redacted.Redacted<string> | undefined
  readonly params: ReadonlyArray<readonly [string, string]>
}

const schemeOf = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//

/** The port as written (digits or not), read from the authority as a driver would; `undefined` when none. */
const portText = (rest: string): string | undefined => {
  const authority = rest.split(/[/?#]/)[0]!
  const host = authority.slice(authority.lastIndexOf("@") + 1)
  const colon = host.lastIndexOf(":")
  return colon < 0 || colon < host.lastIndexOf("]") ? undefined : host.slice(colon + 1)
}

/** A part %-decoded, or `undefined` when an escape is malformed. */
const decoded = (s: string): string | undefined => {
  try {
    return decodeURIComponent(s)
  } catch {
    return undefined
  }
}

/** The URL's parts, or the one sentence that says what is wrong with it. */
export const parse = (url: string, kind: Kind): Either.Either<Parts, string> => {
  const notThis = `not a ${kind.name} URL (expected ${kind.expected})`
  const scheme = schemeOf.exec(url)
  if (scheme === null || !kind.scheme.test(scheme[1]!)) return Either.left(notThis)
  // The WHATWG parser drops tabs and line breaks silently; a driver would not, so they are refused.
  if (/[\u0000-\u001f\u007f]/.test(url)) {
    return Either.left("the URL contains a line break or another control character")
  }
  const port = portText(url.slice(scheme[0].length))
  if (port !== undefined && /^\d+$/.test(port) && (Number(port) < 1 || Number(port) > 65535)) {
    return Either.left(`port ${port} is out of range (expected 1-65535)`)
  }
  if (!URL.canParse(url)) {
    return Either.left("not a valid URL (check the port, and %-encode any @ / ? # in the user name or password)")
  }
  const parsed = new URL(url)
  const parts = [
    ["user name", parsed.username],
    ["password", parsed.password],
    ["host", parsed.hostname.replace(/^\[(.*)\]$/, "$1")],
    ["database name", parsed.pathname.replace(/^\//, "")]
  ] as const
  const values: Array<string> = []
  for (const [part, raw] of parts) {
    const value = decoded(raw)
    if (value === undefined) return Either.left(`malformed %-escape in the ${part}`)
    if (value.includes("\u0000")) return Either.left(`the ${part} contains %00 (a NUL character)`)
    values.push(value)
  }
  const [user, password, host, database] = values as [string, string, string, string]
  if (database === "" && kind.databaseExpected !== undefined) {
    return Either.left(`the URL names no database (expected ${kind.databaseExpected})`)
  }
  const params = [...parsed.searchParams]
  if (kind.params !== undefined) {
    const { driver, options } = kind.params
    for (const [name, value] of params) {
      // Named by its key alone: a value may be a secret (`ssl={"passphrase":...}`).
      const check = options.get(name)
      if (check === undefined) {
        return Either.left(
          `query parameter ${RecordSchema.quoted(name)} is not one of the ${driver} options a URL may set (${
            [...options.keys()].join(", ")
          })`
        )
      }
      const wrong = check(paramValue(value))
      if (wrong !== undefined) return Either.left(`query parameter ${RecordSchema.quoted(name)} ${wrong}`)
    }
  }
  return Either.right({
    host,
    port: parsed.port === "" ? undefined : Number(parsed.port),
    database,
    user: user === "" ? undefined : user,
    password: password === "" ? undefined : Redacted.make(password),
    params
  })
}

/** What is wrong with the URL for the kind, or `undefined` when it is usable. */
export const problemOf = (url: string, kind: Kind): string | undefined =>
  Either.match(parse(url, kind), { onLeft: (problem) => problem, onRight: () => undefined })
