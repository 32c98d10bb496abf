/**
 * Credential redaction (spec §4.5): the one place that knows where a URL hides a secret (its user part, the query
 * parameters pg and mysql2 read as secrets, settings nested in `options=`), used by every output channel.
 */

const schemeOf = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//

/** Key names that hold a secret: pg's `password`/`sslpassword`/`sslkey`, mysql2's `password1..3`, tokens, keys. */
const secretWords = "pass|pwd|secret|token|cred|sslkey|api_?key|private_?key|access_?key|auth_?key"
const secretKey = new RegExp(secretWords, "i")

/** A value that carries a secret setting itself: `options=-c password=x`, mysql2's `ssl={"key":…,"passphrase":…}`. */
const innerSecret = new RegExp(`(?:${secretWords}|\\bkey)[A-Za-z0-9_]*["']?\\s*[=:]`, "i")
const innerValues = new RegExp(`(?:${secretWords}|\\bkey)[A-Za-z0-9_]*["']?\\s*[=:]\\s*["']?([^\\s"',}&]+)`, "gi")

/** Where a secret query parameter starts: `?password=`, `&sslpassword=`. */
const secretParam = new RegExp(`[?&][A-Za-z0-9_.%-]*(?:${secretWords})[A-Za-z0-9_.%-]*=`, "i")

/** `key=value` (or `key%3Dvalue`, inside an encoded `options=`) in text; a key starts a run, so scanning is linear. */
const keyValue = /(?<![A-Za-z0-9_.-])([A-Za-z0-9_.-]+)(?:=|%3D)/gi
const settingValue = /(?:(?!%20|%26)[^&\s"'<>])*/iy

const decode = (s: string): string => {
  try {
    return decodeURIComponent(s)
  } catch {
    return s
  }
}

/** Query strings encode a space as `+`. */
const decodeForm = (s: string): string => decode(s.replace(/\+/g, " "))

/** A URL we cannot read the way every driver would: the user part or the query may run past where we think. */
const inDoubt = (value: string, rest: string): boolean =>
  !URL.canParse(value) || /\s/.test(rest) || rest.includes("#") || (rest.match(/@/g)?.length ?? 0) > 1

/** Secret query parameters become `key=***`; in doubt, the whole query (and fragment) goes. */
const redactQuery = (tail: string, doubt: boolean): string => {
  const at = tail.search(/[?#]/)
  if (at < 0) return tail
  if (doubt) return `${tail.slice(0, at + 1)}***`
  const params = tail.slice(at + 1).split("&").map((param) => {
    const eq = param.indexOf("=")
    if (eq < 0) return param
    const key = decodeForm(param.slice(0, eq))
    const value = param.slice(eq + 1)
    return secretKey.test(key) || innerSecret.test(decodeForm(value)) ? `${param.slice(0, eq)}=***` : param
  })
  return `${tail.slice(0, at + 1)}${params.join("&")}`
}

/**
 * `postgresql://user:pass@host/db?sslpassword=x` → `postgresql://***@host/db?sslpassword=***`. When the URL is
 * malformed (an unencoded `@ / # ?` or space in the password), everything up to its last `@` is the user part and
 * the whole query is redacted. A URL without credentials is unchanged.
 */
export const url = (value: string | null | undefined): string => {
  if (!value) return ""
  const scheme = schemeOf.exec(value)?.[0]
  if (scheme === undefined) return withoutAuthority(value)
  const rest = value.slice(scheme.length)
  const doubt = inDoubt(value, rest)
  // `sqlite:///path` and `postgres:///db?host=/socket` have no authority: an `@` there is in the path.
  // A path may hold `#` or a space (`sqlite:////My Files/a.sqlite`): only secret parameters go.
  if (rest.startsWith("/")) return scheme + settingsIn(redactQuery(rest, false))
  // In doubt the user part runs to the last `@`, but not into a secret parameter, whose value may hold one too.
  const param = rest.search(secretParam)
  const end = doubt ? (param < 0 ? rest.length : param) : rest.search(/[/?#]/)
  const at = rest.slice(0, end < 0 ? rest.length : end).lastIndexOf("@")
  // `;password=x` (a JDBC/ODBC habit) is no query parameter, but a driver may echo it as part of a database name.
  const tail = at > 0 ? `***@${redactQuery(rest.slice(at + 1), doubt)}` : redactQuery(rest, doubt)
  return scheme + settingsIn(tail)
}

/** A leading `scheme:` or `scheme:/` that is not followed by `//` (a typo such as `postgres:/u:pw@h`). */
const loneScheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/?(?!\/)/

/**
 * A value without `scheme://`: a path (absolute, kept as is) or a malformed URL such as `postgres:/u:pw@h/db`,
 * `postgres//u:pw@h/db` or `u:pw@h/db`. An `@` means a user part may be there: in doubt, everything up to the last
 * `@` (not into a secret parameter) and the whole query go.
 */
const withoutAuthority = (value: string): string => {
  if (value.startsWith("/")) return value
  if (!value.includes("@")) return settingsIn(redactQuery(value, false))
  const prefix = loneScheme.exec(value)?.[0] ?? ""
  const rest = value.slice(prefix.length)
  const param = rest.search(secretParam)
  const at = rest.slice(0, param < 0 ? rest.length : param).lastIndexOf("@")
  return prefix + settingsIn(at < 0 ? redactQuery(rest, true) : `***@${redactQuery(rest.slice(at + 1), true)}`)
}

/** The raw password candidates in a URL: every reading of its user part, secret query values, nested settings. */
const candidates = (value: string, doubt: boolean): Array<string> => {
  const scheme = schemeOf.exec(value)?.[0]
  if (scheme === undefined) return [value]
  const out: Array<string> = []
  const rest = value.slice(scheme.length)
  if (!rest.startsWith("/")) {
    if (URL.canParse(value)) out.push(new URL(value).password)
    // In doubt, each `@` may end the user part, depending on how a driver reads the malformed URL.
    const colon = rest.indexOf(":")
    for (let at = rest.indexOf("@"); doubt && at >= 0; at = rest.indexOf("@", at + 1)) {
      if (colon >= 0 && colon < at) out.push(rest.slice(colon + 1, at))
    }
  }
  // `;password=x` or `;PWD=x` outside the query: the value up to the next `;`, and as far as `text` would redact.
  for (const match of rest.matchAll(keyValue)) {
    if (!secretKey.test(match[1]!) || rest[match.index - 1] !== ";") continue
    const start = match.index + match[0].length
    settingValue.lastIndex = start
    const value = settingValue.exec(rest)![0]
    out.push(value, value.split(/[;?#/]/)[0]!)
  }
  const query = rest.indexOf("?")
  if (query >= 0) {
    for (const param of rest.slice(query + 1).split("&")) {
      const eq = param.indexOf("=")
      if (eq < 0) continue
      const raw = param.slice(eq + 1)
      if (secretKey.test(decodeForm(param.slice(0, eq)))) out.push(raw, raw.split("#")[0]!)
      for (const inner of decodeForm(raw).matchAll(innerValues)) out.push(inner[1]!)
    }
  }
  return out.filter((s) => s.length > 0)
}

/** The ways a secret may be written: raw, decoded, percent- and form-encoded, as a URL's password, JSON-escaped. */
const formsOf = (secret: string): Array<string> => {
  const plain = decode(secret)
  const encoded = encodeURIComponent(plain)
  const forms = [secret, plain, decodeForm(secret), encoded, encoded.replace(/%20/g, "+")]
  try {
    const u = new URL("x://h")
    u.password = plain
    forms.push(u.password)
  } catch {
    // no URL form: the others cover it
  }
  forms.push(JSON.stringify(plain).slice(1, -1))
  return forms
}

/**
 * The strings to scrub verbatim for a secret-bearing URL (a driver may echo the password without its URL), or for a
 * bare secret. A URL that carries no credential (e.g. `sqlite:///path`) has none.
 */
export const secretsOf = (value: string | null | undefined): ReadonlyArray<string> => {
  if (!value) return []
  const scheme = schemeOf.exec(value)?.[0]
  const doubt = scheme !== undefined && inDoubt(value, value.slice(scheme.length))
  const found = candidates(value, doubt)
  if (found.length === 0) return []
  const out = new Set<string>(schemeOf.test(value) ? [value] : [])
  for (const secret of found) {
    for (const form of formsOf(secret)) out.add(form)
    // A password cut by an unencoded delimiter may surface in pieces (a driver reads one as a host or a path).
    if (doubt) {
      for (const piece of secret.split(/[@/\s#?&:]+/)) if (piece !== secret && piece.length >= 4) out.add(piece)
    }
  }
  // A secret that shows in the redacted URL anyway (`postgres://postgres:postgres@…`) would only mangle every line.
  const visible = schemeOf.test(value) ? url(value) : ""
  return [...out].filter((s) => s.length >= 3 && !visible.includes(s)).sort((a, b) => b.length - a.length)
}

/** Secrets of this process's archive URL, scrubbed by `text` from every line, wherever it is printed. */
let known: ReadonlyArray<string> = []

/** Makes `text` (and so every error line, log line and evidence string) scrub the secrets of `value` verbatim. */
export const register = (value: string | null | undefined): void => {
  const more = secretsOf(value)
  if (more.length > 0) known = [...new Set([...known, ...more])].sort((a, b) => b.length - a.length)
}

const scrub = (value: string, secrets: ReadonlyArray<string>): string =>
  secrets.reduce((acc, secret) => (secret.length >= 3 ? acc.split(secret).join("***") : acc), value)

const inText = /(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s"'<>`]*/g

/** Each URL inside free text, redacted; a password with a space or quote would end it early, so then it runs on. */
const urlsIn = (value: string): string => {
  const matches = [...value.matchAll(inText)]
  let out = ""
  let from = 0
  matches.forEach((match, i) => {
    const start = match.index
    if (start < from) return
    let end = start + match[0].length
    const newline = value.indexOf("\n", end)
    const stop = Math.min(newline < 0 ? value.length : newline, matches[i + 1]?.index ?? value.length)
    // A quoted URL ends at its closing quote, spaces and all.
    const quote = value[start - 1]
    const close = quote === "'" || quote === "\"" || quote === "`" ? value.indexOf(quote, end) : -1
    if (close >= 0 && close < stop) end = close
    const rest = value.slice(start, end).replace(schemeOf, "")
    if (!rest.startsWith("/") && !/^[^/?#]*@/.test(rest)) {
      // When in doubt the user part runs to the last `@` before the line (or the next URL) ends.
      const at = value.slice(end, stop).lastIndexOf("@")
      if (at >= 0) end += at + 1 + /^[^\s"'<>`]*/.exec(value.slice(end + at + 1))![0].length
    }
    out += value.slice(from, start) + url(value.slice(start, end))
    from = end
  })
  return out + value.slice(from)
}

/** The value of every secret `key=value` setting in text; other settings are scanned on, since one may nest one. */
const settingsIn = (value: string): string => {
  // Most text (every evidence string) has no setting at all: no `=`, no encoded one.
  if (!value.includes("=") && !/%3d/i.test(value)) return value
  let out = ""
  let from = 0
  for (const match of value.matchAll(keyValue)) {
    const start = match.index + match[0].length
    if (match.index < from || !secretKey.test(match[1]!)) continue
    // The value ends at a separator, or inside an encoded `options=` at the next encoded space or `&`.
    settingValue.lastIndex = start
    const end = start + settingValue.exec(value)![0].length
    if (end === start || value.slice(start, end) === "***") continue
    out += `${value.slice(from, start)}***`
    from = end
  }
  return out + value.slice(from)
}

/** `key = 'value'`, as configuration warnings quote a setting (an unknown `client.password` in a planted file). */
const quotedSetting = new RegExp(`(?<![A-Za-z0-9_.-])[A-Za-z0-9_.-]*(?:${secretWords})[A-Za-z0-9_.-]* = '`, "gi")

/** The quoted value of every secret `key = 'value'`: to its `' from ` (a value may hold quotes), else the line's last `'`. */
const quotedIn = (value: string): string => {
  if (!value.includes(" = '")) return value
  let out = ""
  let from = 0
  for (const match of value.matchAll(quotedSetting)) {
    const start = match.index + match[0].length
    if (match.index < from) continue
    const newline = value.indexOf("\n", start)
    const line = value.slice(start, newline < 0 ? value.length : newline)
    const close = line.lastIndexOf("' from ") >= 0 ? line.lastIndexOf("' from ") : line.lastIndexOf("'")
    out += `${value.slice(from, start)}***`
    from = start + (close < 0 ? line.length : close)
  }
  return out + value.slice(from)
}

/** Every URL inside free text redacted, every `secret=value` and `secret = 'value'` setting, the registered secrets. */
export const text = (value: string): string => {
  const urls = value.includes("://") ? urlsIn(value) : value
  return scrub(settingsIn(quotedIn(urls)), known)
}

/** The display convention: a marker when redaction changed the URL, `<not set>` when empty. */
export const display = (value: string | null | undefined): string => {
  if (!value) return "<not set>"
  const redacted = url(value)
  return redacted === value ? value : `${redacted} (credentials redacted)`
}

/** Redacts any known secrets verbatim (e.g. a password that a driver echoes without its URL). */
export const secrets = (value: string, known: ReadonlyArray<string>): string => scrub(text(value), known)
