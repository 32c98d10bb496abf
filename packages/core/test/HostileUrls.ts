/**
 * Archive URLs that hide a password where a naive redactor does not look: shared by the Redact unit test and the
 * CLI test that runs each through every output channel. Hosts are unreachable (port 1) so a connection fails fast.
 */
export interface HostileUrl {
  readonly name: string
  readonly url: string
  /** Strings that must appear nowhere (their encoded forms are checked too). */
  readonly secrets: ReadonlyArray<string>
}

const row = (name: string, url: string, ...secrets: ReadonlyArray<string>): HostileUrl => ({ name, url, secrets })
const pg = "postgres://alice@127.0.0.1:1/db"

export const hostileUrls: ReadonlyArray<HostileUrl> = [
  row("plain userinfo", "postgres://alice:Pw01-plain-secret@127.0.0.1:1/db", "Pw01-plain-secret"),
  row("unencoded @", "postgresql://alice:Pw02@at-secret@127.0.0.1:1/db", "Pw02@at-secret"),
  row("unencoded /", "postgres://alice:Pw03/slash-secret@127.0.0.1:1/db", "Pw03/slash-secret"),
  row("unencoded space", "postgres://alice:Pw04 space secret@127.0.0.1:1/db", "Pw04 space secret"),
  row("unencoded #", "postgres://alice:Pw05#hash-secret@127.0.0.1:1/db", "Pw05#hash-secret"),
  row("unencoded ?", "postgres://alice:Pw06?query-secret@127.0.0.1:1/db", "Pw06?query-secret"),
  row("unencoded :", "postgres://alice:Pw07:colon:secret@127.0.0.1:1/db", "Pw07:colon:secret"),
  row("?password=", `${pg}?password=Pw08-query-secret`, "Pw08-query-secret"),
  row(
    "?sslpassword= after another key",
    `${pg}?sslmode=disable&sslpassword=Pw09-sslpass-secret`,
    "Pw09-sslpass-secret"
  ),
  row("options=-c password=", `${pg}?options=-c%20password%3DPw10-options-secret`, "Pw10-options-secret"),
  row("mixed-case key", `${pg}?PassWord=Pw11-mixedcase-secret`, "Pw11-mixedcase-secret"),
  row(
    "repeated key",
    `${pg}?password=Pw12-first-secret&password=Pw12-second-secret`,
    "Pw12-first-secret",
    "Pw12-second-secret"
  ),
  row("IPv6 host", "postgres://alice:Pw13-ipv6-secret@[::1]:1/db", "Pw13-ipv6-secret"),
  row("empty user", "postgres://:Pw14-emptyuser-secret@127.0.0.1:1/db", "Pw14-emptyuser-secret"),
  row("percent-encoded", "postgres://alice:Pw15%40encoded%2Fsecret@127.0.0.1:1/db", "Pw15@encoded/secret"),
  row("fails to parse", "postgres://alice:Pw16-unparsable-secret@127.0.0.1:notaport/db", "Pw16-unparsable-secret"),
  row("query password with space and #", `${pg}?password=Pw17 spaced#frag-secret`, "Pw17 spaced#frag-secret"),
  row("mysql, unencoded @ / space", "mysql://root:Pw18 my@sql/secret@127.0.0.1:1/db", "Pw18 my@sql/secret"),
  row(
    "mariadb ?password=",
    "mariadb://root@127.0.0.1:1/db?password=Pw19-maria-query-secret",
    "Pw19-maria-query-secret"
  ),
  row(
    "mysql2 ssl passphrase",
    "mysql://root@127.0.0.1:1/db?ssl=%7B%22passphrase%22%3A%22Pw20-ssl-secret%22%7D",
    "Pw20-ssl-secret"
  ),
  row("mariadb password1", "mariadb://root@[::1]:1/db?password1=Pw21-factor-secret", "Pw21-factor-secret"),
  row("`;password=` after the database", `${pg};password=Pw22-semicolon-secret`, "Pw22-semicolon-secret"),
  row("`;PWD=` among settings", `${pg};sslmode=disable;PWD=Pw23-odbc-secret;app=x`, "Pw23-odbc-secret"),
  row(
    "userinfo with `%40` and a raw `@`",
    "postgres://alice:Pw24%40enc@raw-secret@127.0.0.1:1/db",
    "Pw24%40enc@raw-secret",
    "Pw24@enc@raw-secret"
  ),
  row("`;password=` and a user part", "postgres://alice:Pw25-user@127.0.0.1:1/db;password=Pw25-semi", "Pw25-semi"),
  row("mysql `;password=`", "mysql://root@127.0.0.1:1/db;password=Pw26-mysql-semi-secret", "Pw26-mysql-semi-secret")
]

/** A secret as written raw, percent-encoded, form-encoded, and as a URL's userinfo encodes it. */
export const formsOf = (secret: string): ReadonlyArray<string> => {
  const u = new URL("x://h")
  u.password = secret
  return [...new Set([secret, encodeURIComponent(secret), encodeURIComponent(secret).replace(/%20/g, "+"), u.password])]
}

/** The forms of the row's secrets that occur in `text`. */
export const leaksIn = (text: string, row: HostileUrl): ReadonlyArray<string> =>
  row.secrets.flatMap(formsOf).filter((form) => text.includes(form))
