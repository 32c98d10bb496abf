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

export const hostileUrls: ReadonlyArray<HostileUrl> = [
  { name: "plain userinfo", url: "postgres://alice:Pw01-plain-secret@127.0.0.1:1/db", secrets: ["Pw01-plain-secret"] },
  { name: "unencoded @", url: "postgresql://alice:Pw02@at-secret@127.0.0.1:1/db", secrets: ["Pw02@at-secret"] },
  { name: "unencoded /", url: "postgres://alice:Pw03/slash-secret@127.0.0.1:1/db", secrets: ["Pw03/slash-secret"] },
  { name: "unencoded space", url: "postgres://alice:Pw04 space secret@127.0.0.1:1/db", secrets: ["Pw04 space secret"] },
  { name: "unencoded #", url: "postgres://alice:Pw05#hash-secret@127.0.0.1:1/db", secrets: ["Pw05#hash-secret"] },
  { name: "unencoded ?", url: "postgres://alice:Pw06?query-secret@127.0.0.1:1/db", secrets: ["Pw06?query-secret"] },
  { name: "unencoded :", url: "postgres://alice:Pw07:colon:secret@127.0.0.1:1/db", secrets: ["Pw07:colon:secret"] },
  { name: "?password=", url: "postgres://alice@127.0.0.1:1/db?password=Pw08-query-secret", secrets: ["Pw08-query-secret"] },
  {
    name: "?sslpassword= after another key",
    url: "postgres://alice@127.0.0.1:1/db?sslmode=disable&sslpassword=Pw09-sslpass-secret",
    secrets: ["Pw09-sslpass-secret"]
  },
  {
    name: "options=-c password=",
    url: "postgres://alice@127.0.0.1:1/db?options=-c%20password%3DPw10-options-secret",
    secrets: ["Pw10-options-secret"]
  },
  { name: "mixed-case key", url: "postgres://alice@127.0.0.1:1/db?PassWord=Pw11-mixedcase-secret", secrets: ["Pw11-mixedcase-secret"] },
  {
    name: "repeated key",
    url: "postgres://alice@127.0.0.1:1/db?password=Pw12-first-secret&password=Pw12-second-secret",
    secrets: ["Pw12-first-secret", "Pw12-second-secret"]
  },
  { name: "IPv6 host", url: "postgres://alice:Pw13-ipv6-secret@[::1]:1/db", secrets: ["Pw13-ipv6-secret"] },
  { name: "empty user", url: "postgres://:Pw14-emptyuser-secret@127.0.0.1:1/db", secrets: ["Pw14-emptyuser-secret"] },
  { name: "percent-encoded", url: "postgres://alice:Pw15%40encoded%2Fsecret@127.0.0.1:1/db", secrets: ["Pw15@encoded/secret"] },
  { name: "fails to parse", url: "postgres://alice:Pw16-unparsable-secret@127.0.0.1:notaport/db", secrets: ["Pw16-unparsable-secret"] },
  {
    name: "query password with space and #",
    url: "postgres://alice@127.0.0.1:1/db?password=Pw17 spaced#frag-secret",
    secrets: ["Pw17 spaced#frag-secret"]
  },
  { name: "mysql, unencoded @ / space", url: "mysql://root:Pw18 my@sql/secret@127.0.0.1:1/db", secrets: ["Pw18 my@sql/secret"] },
  { name: "mariadb ?password=", url: "mariadb://root@127.0.0.1:1/db?password=Pw19-maria-query-secret", secrets: ["Pw19-maria-query-secret"] },
  {
    name: "mysql2 ssl passphrase",
    url: "mysql://root@127.0.0.1:1/db?ssl=%7B%22passphrase%22%3A%22Pw20-ssl-secret%22%7D",
    secrets: ["Pw20-ssl-secret"]
  },
  { name: "mariadb password1", url: "mariadb://root@[::1]:1/db?password1=Pw21-factor-secret", secrets: ["Pw21-factor-secret"] }
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
