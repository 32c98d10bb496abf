/** Credential redaction (spec §4.5), used by the logger, errors, evidence and config-show alike. */

const userinfo = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^@/?#\s]*)@/

/** `postgresql://user:pass@host/db` → `postgresql://***@host/db`; a URL without credentials is unchanged. */
export const url = (value: string | null | undefined): string => {
  if (!value) return ""
  const match = userinfo.exec(value)
  return match && match[2]!.length > 0 ? value.replace(userinfo, `$1***@`) : value
}

const inText = /([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^@\s/]+@/g

/** Every `scheme://<userinfo>@` inside free text becomes `scheme://***@`. */
export const text = (value: string): string => (value.includes("://") ? value.replace(inText, "$1***@") : value)

/** The display convention: a marker when redaction changed the URL, `<not set>` when empty. */
export const display = (value: string | null | undefined): string => {
  if (!value) return "<not set>"
  const redacted = url(value)
  return redacted === value ? value : `${redacted} (credentials redacted)`
}

/** Redacts any known secrets verbatim (e.g. a password that a driver echoes without its URL). */
export const secrets = (value: string, known: ReadonlyArray<string>): string =>
  known.reduce((acc, secret) => (secret.length >= 3 ? acc.split(secret).join("***") : acc), text(value))
