/** MIME type and language guessed from a file's extension (spec §1.4 and §13.2), for the item's metadata. */
import * as path from "node:path"

const table: Record<string, readonly [mime: string, language: string | null]> = {
  ".py": ["text/x-python", "python"],
  ".md": ["text/markdown", "markdown"],
  ".txt": ["text/plain", "text"],
  ".json": ["application/json", "json"],
  ".csv": ["text/csv", "csv"],
  ".yml": ["application/yaml", "yaml"],
  ".yaml": ["application/yaml", "yaml"],
  ".toml": ["application/toml", "toml"],
  ".sql": ["application/sql", "sql"],
  ".js": ["text/javascript", "javascript"],
  ".mjs": ["text/javascript", "javascript"],
  ".cjs": ["text/javascript", "javascript"],
  ".ts": ["application/typescript", "typescript"],
  ".tsx": ["application/typescript", "typescript"],
  ".sh": ["text/x-shellscript", "shell"],
  ".html": ["text/html", "html"],
  ".css": ["text/css", "css"],
  ".xml": ["application/xml", "xml"],
  ".rs": ["text/x-rust", "rust"],
  ".go": ["text/x-go", "go"],
  ".java": ["text/x-java", "java"],
  ".c": ["text/x-c", "c"],
  ".h": ["text/x-c", "c"],
  ".cpp": ["text/x-c++", "cpp"],
  ".rb": ["text/x-ruby", "ruby"],
  ".png": ["image/png", null],
  ".jpg": ["image/jpeg", null],
  ".jpeg": ["image/jpeg", null],
  ".gif": ["image/gif", null],
  ".svg": ["image/svg+xml", null],
  ".pdf": ["application/pdf", null],
  ".zip": ["application/zip", null],
  ".gz": ["application/gzip", null],
  ".tar": ["application/x-tar", null]
}

export const guess = (file: string): { readonly mime: string; readonly language: string | null } => {
  const hit = table[path.extname(file).toLowerCase()]
  return hit ? { mime: hit[0], language: hit[1] } : { mime: "application/octet-stream", language: null }
}
