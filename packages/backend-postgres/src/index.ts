export * as PgArchive from "./PgArchive.js"
export * as PgSchema from "./PgSchema.js"
