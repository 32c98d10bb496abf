// Lint and format (dprint through @effect/eslint-plugin, the Effect maintainers' settings): `pnpm lint`, `pnpm format`.
import * as effectEslint from "@effect/eslint-plugin"
import eslint from "@eslint/js"
import tseslint from "typescript-eslint"

export default tseslint.config(
  {
    ignores: [
      "**/dist/**",
      "**/dist-*/**",
      "**/.bench/**",
      "**/lib/**",
      "**/node_modules/**",
      "**/.turbo/**",
      "**/*.d.ts",
      "fixtures/**"
    ]
  },
  eslint.configs.recommended,
  tseslint.configs.recommended,
  effectEslint.configs.dprint,
  {
    languageOptions: { globals: { process: "readonly", console: "readonly", Buffer: "readonly", URL: "readonly" } },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      // Effect's own setting: `any` is how variance-free generic bounds (`Effect<any, any, any>`) are written.
      "@typescript-eslint/no-explicit-any": "off",
      // Matching control characters is the point where hostile stub fields and names are checked.
      "no-control-regex": "off",
      "@effect/dprint": ["error", {
        config: {
          indentWidth: 2,
          lineWidth: 120,
          semiColons: "asi",
          quoteStyle: "alwaysDouble",
          trailingCommas: "never",
          operatorPosition: "maintain",
          "arrowFunction.useParentheses": "force"
        }
      }]
    }
  }
)
