/**
 * Stands in for `yaml`, `toml` and `ini`, which @effect/cli imports only for `Options.fileParse` (unused here):
 * leaving them out of the bundle saves ~150 KB of JavaScript compiled at every start.
 */
const unavailable = (): never => {
  throw new Error("config-file formats other than TOML via smol-toml are not bundled in the codex CLI")
}
export const parse = unavailable
export const stringify = unavailable
export const decode = unavailable
export const encode = unavailable
export default { parse, stringify, decode, encode }
