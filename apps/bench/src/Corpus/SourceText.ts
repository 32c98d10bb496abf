/**
 * Source-like text: identifiers drawn from a per-file vocabulary with a skew (a few names dominate, as in real code),
 * indentation that follows block structure, comments, string and number literals. Tuned so zstd level 3 compresses
 * it about as much as real code (3–4×); pure ASCII, so characters and bytes coincide.
 */
import type { Prng } from "../Prng.js"

export type Style = "c" | "python" | "prose" | "data"

const words = (
  "get set add remove update create delete find load save read write open close start stop run init parse format " +
  "render build make apply check validate handle process resolve reject emit listen send receive fetch store cache " +
  "flush commit rollback lock unlock merge split join map filter reduce sort group count sum index key value item " +
  "list array buffer stream chunk block page record row column table query result error status state config option " +
  "setting param arg input output source target path file dir name id uuid hash size length offset limit total max " +
  "min first last next prev head tail node tree graph edge root child parent user account session token auth role " +
  "permission policy rule event message queue topic channel socket client server request response header body " +
  "payload context scope span trace metric counter timer logger level debug info warn retry attempt delay timeout " +
  "deadline interval schedule task job worker pool thread fiber batch manifest archive artifact tombstone restore " +
  "codec compress decompress encode decode serialize schema migration version dialect backend driver connection " +
  "transaction statement cursor report summary detail entry entries local remote default custom internal external"
).split(" ")

const types = [
  "string",
  "number",
  "boolean",
  "Uint8Array",
  "Buffer",
  "Record<string, unknown>",
  "ReadonlyArray<string>",
  "Date",
  "Promise<void>",
  "Options",
  "Result",
  "Config",
  "State"
]
const cKeywords = ["const", "let", "return", "if", "for", "while", "else", "throw", "await", "yield"]

const capital = (w: string) => w.charAt(0).toUpperCase() + w.slice(1)

/** A skewed index in [0, n): small indices are much more frequent (u^3 keeps the maths exact and portable). */
const skewed = (rng: Prng, n: number) => {
  const u = rng.unit()
  return Math.floor(u * u * u * n)
}

const identifier = (rng: Prng, snake: boolean) => {
  const parts = 1 + rng.below(3)
  let id = rng.pick(words)
  for (let i = 1; i < parts; i++) id += snake ? "_" + rng.pick(words) : capital(rng.pick(words))
  return id
}

const sentence = (rng: Prng, min: number, max: number) => {
  const n = rng.between(min, max)
  let s = rng.pick(words)
  for (let i = 1; i < n; i++) s += " " + rng.pick(words)
  return s
}

/** Identifiers per "module": a big file is many modules, so a new vocabulary starts every `moduleBytes`. */
const moduleBytes = 64 * 1024
/** Longer than any generated line, so a line written near the end never overflows the buffer. */
const slack = 4096

/** Generates exactly `size` bytes of text in the given style. */
export const generate = (rng: Prng, style: Style, size: number): Uint8Array => {
  const snake = style === "python"
  let vocab: Array<string> = []
  let vocabEnd = 0
  const id = () => vocab[skewed(rng, vocab.length)]!
  const indentUnit = style === "python" || rng.below(2) === 0 ? "    " : "  "
  // Lines go straight into one buffer: holding millions of line strings made generation GC-bound.
  const out = Buffer.allocUnsafe(size + slack)
  let length = 0
  let depth = 0
  const push = (line: string) => {
    if (line.length > 0) {
      if (depth > 0) length += out.write(indentUnit.repeat(depth), length, "latin1")
      length += out.write(line, length, "latin1")
    }
    out[length++] = 10
  }
  while (length < size) {
    if (length >= vocabEnd) {
      vocab = Array.from({ length: 48 + rng.below(64) }, () => identifier(rng, snake))
      vocabEnd = length + moduleBytes
    }
    switch (style) {
      case "c":
        cLine(rng, id, push, () => depth, (d) => (depth = d))
        break
      case "python":
        pythonLine(rng, id, push, () => depth, (d) => (depth = d))
        break
      case "prose":
        proseLine(rng, id, push)
        break
      case "data":
        dataLine(rng, id, push, () => depth, (d) => (depth = d))
        break
    }
  }
  return out.subarray(0, size)
}

type Push = (line: string) => void

const call = (rng: Prng, id: () => string) => {
  const args = rng.below(4)
  const list: Array<string> = []
  for (let i = 0; i < args; i++) list.push(rng.below(5) === 0 ? String(rng.below(1000)) : id())
  return `${id()}(${list.join(", ")})`
}

const cLine = (rng: Prng, id: () => string, push: Push, depth: () => number, setDepth: (d: number) => void) => {
  const d = depth()
  if (d === 0) {
    if (rng.below(3) === 0) push(`/** ${capital(sentence(rng, 4, 12))}. */`)
    const params = Array.from({ length: rng.below(4) }, () => `${id()}: ${rng.pick(types)}`).join(", ")
    push(`export ${rng.below(3) === 0 ? "async " : ""}function ${id()}(${params}): ${rng.pick(types)} {`)
    setDepth(1)
    return
  }
  const r = rng.below(100)
  if (r < 8) push(`// ${sentence(rng, 3, 10)}`)
  else if (r < 30) push(`const ${id()} = ${call(rng, id)}`)
  else if (r < 42) push(`${id()}.${id()}(${id()}, "${sentence(rng, 1, 4)}")`)
  else if (r < 50) push(`${rng.pick(cKeywords)} ${id()} ${rng.pick(["===", "!==", "+", "<", ">="])} ${id()}.${id()}`)
  else if (r < 58 && d < 5) {
    push(`if (${id()} ${rng.pick(["&&", "||"])} ${id()}.${id()} > ${rng.below(100)}) {`)
    setDepth(d + 1)
  } else if (r < 62 && d < 5) {
    push(`for (const ${id()} of ${id()}) {`)
    setDepth(d + 1)
  } else if (r < 68) push(`${id()} = ${id()}[${rng.below(16)}] ?? ${id()}`)
  else if (r < 74) push("")
  else if (r < 80) push(`return ${call(rng, id)}`)
  else if (r < 84) push(`throw new ${capital(id())}Error(\`${sentence(rng, 2, 6)}: \${${id()}}\`)`)
  else {
    setDepth(d - 1)
    push("}")
    if (d - 1 === 0) push("")
  }
}

const pythonLine = (rng: Prng, id: () => string, push: Push, depth: () => number, setDepth: (d: number) => void) => {
  const d = depth()
  if (d === 0) {
    push(`def ${id()}(${Array.from({ length: rng.below(4) }, () => id()).join(", ")}):`)
    setDepth(1)
    if (rng.below(2) === 0) push(`"""${capital(sentence(rng, 4, 12))}."""`)
    return
  }
  const r = rng.below(100)
  if (r < 10) push(`# ${sentence(rng, 3, 10)}`)
  else if (r < 35) push(`${id()} = ${call(rng, id)}`)
  else if (r < 45) push(`${id()}.${id()}(${id()}, "${sentence(rng, 1, 4)}")`)
  else if (r < 55 && d < 5) {
    push(`if ${id()} and ${id()}.${id()} > ${rng.below(100)}:`)
    setDepth(d + 1)
  } else if (r < 60 && d < 5) {
    push(`for ${id()} in ${id()}:`)
    setDepth(d + 1)
  } else if (r < 66) push("")
  else if (r < 74) push(`return ${call(rng, id)}`)
  else if (r < 80) push(`raise ${capital(id())}Error(f"${sentence(rng, 2, 6)}: {${id()}}")`)
  else setDepth(d - 1)
}

const proseLine = (rng: Prng, id: () => string, push: Push) => {
  const r = rng.below(100)
  if (r < 8) push(`## ${capital(sentence(rng, 2, 5))}`)
  else if (r < 20) push("")
  else if (r < 35) push(`- \`${id()}\`: ${sentence(rng, 4, 12)}.`)
  else if (r < 42) push(`    ${call(rng, id)}`)
  else push(`${capital(sentence(rng, 6, 16))} \`${id()}\` ${sentence(rng, 3, 10)}.`)
}

const dataLine = (rng: Prng, id: () => string, push: Push, depth: () => number, setDepth: (d: number) => void) => {
  const d = depth()
  const r = rng.below(100)
  if (d === 0 || (r < 15 && d < 4)) {
    push(`"${id()}": {`)
    setDepth(d + 1)
  } else if (r < 40) push(`"${id()}": "${sentence(rng, 1, 3)}",`)
  else if (r < 65) push(`"${id()}": ${rng.below(100000)},`)
  else if (r < 75) push(`"${id()}": ${rng.below(2) === 0 ? "true" : "false"},`)
  else if (r < 85) push(`"${id()}": ["${id()}", "${id()}"],`)
  else {
    setDepth(d - 1)
    push("},")
  }
}
