export * as MariadbArchive from "./MariadbArchive.js"
export * as MariadbClient from "./MariadbClient.js"
export * as MariadbDialect from "./MariadbDialect.js"
export * as MariadbSchema from "./MariadbSchema.js"
