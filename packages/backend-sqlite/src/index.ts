export * as SqliteArchive from "./SqliteArchive.js"
export * as SqliteSchema from "./SqliteSchema.js"
