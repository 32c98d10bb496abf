export * as PgArchive from "./PgArchive.js"
export * as PgDialect from "./PgDialect.js"
export * as PgSchema from "./PgSchema.js"
