/**
 * Help as `codex ... --help` prints it: @effect/cli's own help document for each command, with the full command in
 * the usage line, a command list that wraps, the command's examples, and colour only where colour is wanted.
 */
import { CliConfig, Command, HelpDoc, Options, Span, type Usage } from "@effect/cli"
import * as Ansi from "@effect/printer-ansi/Ansi"
import * as AnsiDoc from "@effect/printer-ansi/AnsiDoc"
import * as Doc from "@effect/printer/Doc"
import { Option } from "effect"
import * as Examples from "./Examples.js"

// Any command of the tree: its handler's types do not matter to help.
type AnyCommand = Command.Command<any, any, any, any>

/** A node of the command tree: a command and, for a group (`archive`, `evidence`), its subcommands in help order. */
export interface Node {
  readonly command: AnyCommand
  readonly children?: ReadonlyArray<Node>
}

export interface Style {
  readonly color: boolean
  readonly width: number
}

/**
 * Colour only on a terminal, never with `NO_COLOR` set to anything (no-color.org); `FORCE_COLOR` decides when set,
 * as it does for Node itself (`0` or `false` off, any other value on).
 */
export const colorWanted = (env: NodeJS.ProcessEnv, isTTY: boolean): boolean => {
  const force = env.FORCE_COLOR
  if (force !== undefined) return force !== "0" && force !== "false"
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return false
  return isTTY
}

/** How help is printed to this process's stdout: wrapped to the terminal, or to 80 columns into a pipe or file. */
export const styleOfStdout = (): Style => ({
  color: colorWanted(process.env, process.stdout.isTTY === true),
  width: process.stdout.isTTY ? Math.max(40, process.stdout.columns ?? 80) : 80
})

const nameOf = (node: Node): string => Command.getNames(node.command).pipe((names) => [...names][0] ?? "")

/** The node a command path names (`["codex", "archive", "restore"]`), or undefined. */
export const find = (root: Node, path: ReadonlyArray<string>): Node | undefined => {
  if (path.length === 0 || nameOf(root) !== path[0]) return undefined
  let node: Node | undefined = root
  for (const name of path.slice(1)) {
    node = node?.children?.find((child) => nameOf(child) === name)
    if (node === undefined) return undefined
  }
  return node
}

/** Every command under a node, with its path, depth first in help order (groups before their subcommands). */
export const walk = (
  node: Node,
  path: ReadonlyArray<string> = [nameOf(node)]
): Array<{ path: ReadonlyArray<string>; node: Node }> => [
  { path, node },
  ...(node.children ?? []).flatMap((child) => walk(child, [...path, nameOf(child)]))
]

// ---------------------------------------------------------------------------------------------------------------------
// The help document
// ---------------------------------------------------------------------------------------------------------------------

const flatten = (usage: Usage.Usage): Array<Usage.Usage> =>
  usage._tag === "Concat" ? [...flatten(usage.left), ...flatten(usage.right)] : usage._tag === "Empty" ? [] : [usage]

const isOption = (usage: Usage.Usage): boolean =>
  usage._tag === "Named" ?
    usage.names.some((n) => n.startsWith("-")) :
    usage._tag === "Optional" || usage._tag === "Repeated" ?
    isOption(usage.usage) :
    usage._tag === "Alternation" ?
    isOption(usage.left) || isOption(usage.right) :
    usage._tag === "Concat" && (isOption(usage.left) || isOption(usage.right))

const argument = (usage: Usage.Usage): string => {
  switch (usage._tag) {
    case "Named":
      return usage.names.map((n) => n.replace(/^<(.*)>$/, "$1")).join("|")
    case "Optional":
      return `[${argument(usage.usage)}]`
    case "Repeated":
      return `${argument(usage.usage)}...`
    case "Alternation":
      return `${argument(usage.left)}|${argument(usage.right)}`
    case "Concat":
      return `${argument(usage.left)} ${argument(usage.right)}`
    default:
      return ""
  }
}

/**
 * `codex archive restore [options] TOMBSTONE|STUB [OUTPUT]`: the full command, required options spelled out, the
 * optional ones summed up as `[options]` (they are listed below), then the arguments.
 */
export const usageLine = (path: ReadonlyArray<string>, node: Node): string => {
  if (node.children !== undefined) return `${path.join(" ")} [options] COMMAND`
  // The first element is the command's own name, already in the path.
  const parts = flatten(Command.getUsage(node.command)).slice(1)
  const required = parts.filter((u) => u._tag === "Named" && isOption(u)).map((u) => {
    const named = u as Usage.Named
    const value = Option.getOrUndefined(named.acceptedValues)
    const name = named.names.find((n) => n.startsWith("--")) ?? named.names[0]!
    return value === undefined
      ? name
      : `${name} ${value.includes("|") ? `{${value.replace(/ /g, "")}}` : value.toUpperCase()}`
  })
  const hasOptional = parts.some((u) => u._tag !== "Named" && isOption(u))
  const args = parts.filter((u) => !isOption(u)).map(argument).filter((a) => a !== "")
  return [...path, ...(hasOptional ? ["[options]"] : []), ...required, ...args].join(" ")
}

/** The blocks of a help document, in order (@effect/cli nests them as binary sequences). */
const blocksOf = (doc: HelpDoc.HelpDoc): Array<HelpDoc.HelpDoc> =>
  HelpDoc.isSequence(doc) ? [...blocksOf(doc.left), ...blocksOf(doc.right)] : HelpDoc.isEmpty(doc) ? [] : [doc]

const isHeader = (doc: HelpDoc.HelpDoc, title: string) =>
  HelpDoc.isHeader(doc) && Span.isText(doc.value) && doc.value.value === title

/** A paragraph's text when it is one plain span, as @effect/cli's own sentences are; otherwise undefined. */
const plainText = (block: HelpDoc.HelpDoc): string | undefined =>
  HelpDoc.isParagraph(block) && Span.isText(block.value) ? block.value.value : undefined

/**
 * The sentences @effect/cli writes under an option or argument whatever it is for: its type's ("A user-defined piece
 * of text.", "An integer.", "A directory.", "One of the following: text, json") and `Options.optional`'s or
 * `withDefault`'s "This setting is optional.". They say nothing the placeholder (`--concurrency N`, `--log-format
 * text | json`) and the usage line (`[options]`, `[OUTPUT]`) do not, and cost three lines an option, so help drops
 * them. Read off @effect/cli's own help of options that have no description, so a reworded sentence is still found;
 * a sentence that says something (a file that must exist, a date's format, a confidential value, a default's value,
 * "may be repeated") is kept.
 */
const boilerplate: ReadonlySet<string> = new Set(
  ([
    Options.text("x").pipe(Options.optional),
    Options.integer("x"),
    Options.float("x"),
    Options.boolean("x"),
    Options.file("x", { exists: "either" }),
    Options.directory("x", { exists: "either" })
  ] as ReadonlyArray<Options.Options<unknown>>).flatMap((probe) => blocksOf(Options.getHelp(probe)))
    .flatMap((list) => HelpDoc.isDescriptionList(list) ? list.definitions.flatMap(([, body]) => blocksOf(body)) : [])
    .flatMap((block) => plainText(block) ?? [])
)

// A choice's sentence lists its choices, which the placeholder already shows.
const isBoilerplate = (block: HelpDoc.HelpDoc): boolean => {
  const text = plainText(block)
  return text !== undefined && (boilerplate.has(text) || text.startsWith("One of the following: "))
}

/** An ARGUMENTS or OPTIONS entry with only what is its own: its description, and whatever else says something. */
const withoutBoilerplate = (block: HelpDoc.HelpDoc): HelpDoc.HelpDoc =>
  HelpDoc.mapDescriptionList(
    block,
    (term, body) => [term, HelpDoc.blocks(blocksOf(body).filter((b) => !isBoilerplate(b)))]
  )

/** @effect/cli's built-in `--wizard`, which `Cli.run` refuses, left out of the OPTIONS list. */
const withoutWizard = (block: HelpDoc.HelpDoc): HelpDoc.HelpDoc =>
  HelpDoc.isDescriptionList(block)
    ? HelpDoc.descriptionList(
      block.definitions.filter(([term]) => textOf(term) !== "--wizard") as [
        [Span.Span, HelpDoc.HelpDoc],
        ...Array<[Span.Span, HelpDoc.HelpDoc]>
      ]
    )
    : block

/** A command's one-line summary: the first paragraph of its description. */
export const summaryOf = (node: Node): HelpDoc.HelpDoc => {
  const blocks = blocksOf(Command.getHelp(node.command, CliConfig.defaultConfig))
  const at = blocks.findIndex((b) => isHeader(b, "DESCRIPTION"))
  return at >= 0 && blocks[at + 1] !== undefined ? blocks[at + 1]! : HelpDoc.empty
}

/** The help of the command at `path` under `root`: usage, @effect/cli's sections, subcommands, examples. */
export const document = (root: Node, path: ReadonlyArray<string>, version: string): HelpDoc.HelpDoc | undefined => {
  const node = find(root, path)
  if (node === undefined) return undefined
  // @effect/cli's COMMANDS section is one unbreakable line per command with its whole usage: ours replaces it.
  const own = blocksOf(Command.getHelp(node.command, CliConfig.defaultConfig))
  const cut = own.findIndex((b) => isHeader(b, "COMMANDS"))
  const sections = (cut >= 0 ? own.slice(0, cut) : own).map(withoutBoilerplate).map(withoutWizard)
  const commands = node.children === undefined ? [] : [
    HelpDoc.h1("COMMANDS"),
    HelpDoc.descriptionList(
      walk(node, path).slice(1).map(({ node: child, path: childPath }) =>
        [Span.text(childPath.slice(path.length).join(" ")), summaryOf(child)] as [Span.Span, HelpDoc.HelpDoc]
      ) as [[Span.Span, HelpDoc.HelpDoc], ...Array<[Span.Span, HelpDoc.HelpDoc]>]
    )
  ]
  const examples = Examples.of(path.slice(2).join(" "))
  const exampleSection = examples.length === 0 ? [] : [
    HelpDoc.h1("EXAMPLES"),
    HelpDoc.blocks(
      examples.map((e) => HelpDoc.descriptionList([[Span.text(e.title), HelpDoc.p(Span.strong(`$ ${e.line}`))]]))
    )
  ]
  return HelpDoc.blocks([
    HelpDoc.p(`codex ${version}`),
    HelpDoc.h1("USAGE"),
    HelpDoc.p(Span.strong(`$ ${usageLine(path, node)}`)),
    ...sections,
    ...commands,
    ...exampleSection
  ])
}

// ---------------------------------------------------------------------------------------------------------------------
// Rendering: @effect/cli's layout, with paragraphs wrapped at the width and a COMMANDS table in two columns
// ---------------------------------------------------------------------------------------------------------------------

interface Piece {
  readonly text: string
  readonly style: Ansi.Ansi | undefined
}

/** One output line: its pieces, indentation included. */
type Line = ReadonlyArray<Piece>

const styled = (outer: Ansi.Ansi | undefined, inner: Ansi.Ansi) =>
  outer === undefined ? inner : Ansi.combine(outer, inner)

const piecesOf = (span: Span.Span, style: Ansi.Ansi | undefined = undefined): Array<Piece> => {
  switch (span._tag) {
    case "Text":
      return [{ text: span.value, style }]
    case "Sequence":
      return [...piecesOf(span.left, style), ...piecesOf(span.right, style)]
    case "Strong":
      return piecesOf(span.value, styled(style, Ansi.bold))
    case "Weak":
      return piecesOf(span.value, styled(style, Ansi.blackBright))
    case "URI":
      return [{ text: span.value, style: styled(style, Ansi.underlined) }]
    case "Highlight":
      return piecesOf(span.value, styled(style, Ansi.color(span.color)))
  }
}

const textOf = (span: Span.Span): string => piecesOf(span).map((p) => p.text).join("")
const spaces = (n: number): Piece => ({ text: " ".repeat(n), style: undefined })
const lengthOf = (pieces: ReadonlyArray<Piece>) => pieces.reduce((n, p) => n + p.text.length, 0)

/**
 * A span's words filled into lines of at most `width` columns, the first starting at `first` and the others at
 * `indent`. Wrapped here, not by @effect/printer's fillSep: its layout grew exponentially with a list of paragraphs.
 */
const wrap = (span: Span.Span, first: Line, indent: number, width: number): Array<Line> => {
  const words: Array<Array<Piece>> = [[]]
  for (const piece of piecesOf(span)) {
    for (const [i, part] of piece.text.split(/\s+/).entries()) {
      if (i > 0 && words[words.length - 1]!.length > 0) words.push([])
      if (part !== "") words[words.length - 1]!.push({ text: part, style: piece.style })
    }
  }
  const lines: Array<Array<Piece>> = [[...first]]
  let fresh = true
  for (const word of words.filter((w) => w.length > 0)) {
    const line = lines[lines.length - 1]!
    if (!fresh && lengthOf(line) + 1 + lengthOf(word) > width) {
      lines.push([spaces(indent), ...word])
    } else {
      line.push(...(fresh ? [] : [spaces(1)]), ...word)
    }
    fresh = false
  }
  return lines
}

/**
 * A command line (`$ codex ...`: a usage line, an example) breaks only between its words, with a shell's ` \\` at
 * the end of each broken line, so that it can still be pasted as it is shown.
 */
const commandLine = (span: Span.Span, indent: number, width: number): Array<Line> => {
  const style = piecesOf(span)[0]?.style
  const lines: Array<string> = []
  for (const word of textOf(span).match(/"[^"]*"|'[^']*'|\S+/g) ?? []) {
    const last = lines.length - 1
    const room = width - indent - 2 // the " \\" a broken line ends with
    if (last >= 0 && lines[last]!.length + 1 + word.length <= room) lines[last] += ` ${word}`
    else lines.push(last < 0 ? word : `    ${word}`)
  }
  return lines.map((text, i) => [spaces(indent), { text: i < lines.length - 1 ? `${text} \\` : text, style }])
}

const paragraph = (span: Span.Span, indent: number, width: number): Array<Line> =>
  textOf(span).startsWith("$ ") ? commandLine(span, indent, width) : wrap(span, [spaces(indent)], indent, width)

const bold = (pieces: ReadonlyArray<Piece>): Array<Piece> =>
  pieces.map((p) => ({ text: p.text, style: styled(p.style, Ansi.bold) }))

/** Blocks are separated by one empty line, as @effect/cli lays them out. */
const joined = (blocks: ReadonlyArray<Array<Line>>): Array<Line> =>
  blocks.filter((b) => b.length > 0).flatMap((b, i) => (i === 0 ? b : [[], ...b]))

const linesOf = (doc: HelpDoc.HelpDoc, indent: number, width: number, commandsTable: boolean): Array<Line> => {
  switch (doc._tag) {
    case "Empty":
      return []
    case "Header":
      return [[spaces(indent), ...bold(piecesOf(doc.value))]]
    case "Paragraph":
      return paragraph(doc.value, indent, width)
    case "DescriptionList": {
      if (commandsTable) {
        const column = Math.min(Math.max(...doc.definitions.map(([name]) => textOf(name).length)) + 2, 24)
        return doc.definitions.flatMap(([name, summary]) => {
          const term = [spaces(indent + 2), ...bold(piecesOf(name))]
          const text = HelpDoc.isParagraph(summary) ? summary.value : Span.empty
          const at = indent + 2 + column
          // A name too long for the column puts its summary on the next line, at the column.
          return lengthOf(term) + 2 > at
            ? [term, ...wrap(text, [spaces(at)], at, width)]
            : wrap(text, [...term, spaces(at - lengthOf(term))], at, width)
        })
      }
      return joined(
        doc.definitions.map(([term, body]) =>
          joined([wrap(term, [spaces(indent)], indent, width).map(bold), linesOf(body, indent + 2, width, false)])
        )
      )
    }
    case "Enumeration":
      return joined(doc.elements.map((element) => {
        const [head = [], ...rest] = linesOf(element, indent + 4, width, false)
        return [[spaces(indent + 2), { text: "- ", style: undefined }, ...head.slice(1)], ...rest]
      }))
    case "Sequence":
      return joined([linesOf(doc.left, indent, width, false), linesOf(doc.right, indent, width, false)])
  }
}

/** Renders a help document: ANSI styles only when colour is wanted, lines wrapped at the width. */
export const render = (doc: HelpDoc.HelpDoc, style: Style): string => {
  const blocks = blocksOf(doc)
  const lines = joined(
    blocks.map((block, i) => linesOf(block, 0, style.width, i > 0 && isHeader(blocks[i - 1]!, "COMMANDS")))
  )
  if (!style.color) return lines.map((line) => line.map((p) => p.text).join("").trimEnd()).join("\n")
  // Neighbouring pieces of one style are printed as one, so a styled line carries one escape sequence, not one a word.
  const merged = lines.map((line) =>
    line.reduce<Array<Piece>>((acc, p) => {
      const last = acc[acc.length - 1]
      if (last !== undefined && last.style === p.style) {
        acc[acc.length - 1] = { text: last.text + p.text, style: p.style }
      } else acc.push(p)
      return acc
    }, [])
  )
  const docs = merged.map((line) =>
    Doc.hcat(line.map((p) => p.style === undefined ? Doc.text(p.text) : Doc.annotate(Doc.text(p.text), p.style)))
  )
  return AnsiDoc.render(Doc.concatWith(docs, (a, b) => Doc.hcat([a, Doc.hardLine, b])), { style: "pretty" })
}
