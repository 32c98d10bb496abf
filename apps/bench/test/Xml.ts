/** A strict little XML well-formedness check for the SVG writer: balanced tags, quoted attributes, known entities. */

export interface Parsed {
  readonly root: string
  readonly texts: ReadonlyArray<string>
}

const entity = /&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/g

const checkText = (text: string, where: number) => {
  if (text.replace(entity, "").includes("&")) throw new Error(`bare '&' at ${where}`)
}

export const parse = (xml: string): Parsed => {
  const stack: Array<string> = []
  const texts: Array<string> = []
  let root: string | undefined
  let i = 0
  const body = xml.replace(/^<\?xml[^?]*\?>\s*/, "")
  while (i < body.length) {
    const lt = body.indexOf("<", i)
    const text = body.slice(i, lt === -1 ? body.length : lt)
    if (text.trim().length > 0) {
      if (stack.length === 0) throw new Error(`text outside the root element at ${i}`)
      checkText(text, i)
      texts.push(text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, "\"").replace(/&amp;/g, "&"))
    }
    if (lt === -1) break
    if (body.startsWith("<!--", lt)) {
      const end = body.indexOf("-->", lt)
      if (end === -1) throw new Error(`unterminated comment at ${lt}`)
      i = end + 3
      continue
    }
    const gt = body.indexOf(">", lt)
    if (gt === -1) throw new Error(`unterminated tag at ${lt}`)
    const tag = body.slice(lt + 1, gt)
    if (tag.startsWith("/")) {
      const name = tag.slice(1).trim()
      const open = stack.pop()
      if (open !== name) throw new Error(`</${name}> closes <${open}> at ${lt}`)
    } else {
      const selfClosing = tag.endsWith("/")
      const m = /^([A-Za-z_][\w:.-]*)((?:\s+[A-Za-z_][\w:.-]*="[^"<]*")*)\s*\/?$/.exec(tag)
      if (!m) throw new Error(`malformed tag <${tag.slice(0, 60)}> at ${lt}`)
      const attrs = [...m[2]!.matchAll(/([A-Za-z_][\w:.-]*)="([^"<]*)"/g)]
      const names = attrs.map((a) => a[1])
      if (new Set(names).size !== names.length) throw new Error(`duplicate attribute in <${m[1]}> at ${lt}`)
      for (const a of attrs) checkText(a[2]!, lt)
      if (stack.length === 0) {
        if (root !== undefined) throw new Error(`second root element <${m[1]}> at ${lt}`)
        root = m[1]!
      }
      if (!selfClosing) stack.push(m[1]!)
    }
    i = gt + 1
  }
  if (stack.length > 0) throw new Error(`unclosed <${stack.join("> <")}>`)
  if (root === undefined) throw new Error("no root element")
  return { root, texts }
}
