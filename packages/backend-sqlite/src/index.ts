export * as SqliteArchive from "./SqliteArchive.js"
export * as SqliteDialect from "./SqliteDialect.js"
export * as SqliteSchema from "./SqliteSchema.js"
