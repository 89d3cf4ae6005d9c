import js from "@eslint/js";
import svelte from "eslint-plugin-svelte";
import globals from "globals";
import ts from "typescript-eslint";
import svelteConfig from "./svelte.config.js";

/** Raw HTML sinks: request data must only ever reach the DOM through Svelte's text interpolation. */
const rawHtmlProperties = ["innerHTML", "outerHTML"].map((property) => ({
  selector: `MemberExpression[property.name='${property}']`,
  message: `${property} renders raw HTML; use Svelte text interpolation.`,
}));

const forbidden = [
  ...rawHtmlProperties,
  { selector: "CallExpression[callee.property.name='insertAdjacentHTML']", message: "insertAdjacentHTML renders raw HTML." },
  { selector: "CallExpression[callee.object.name='document'][callee.property.name=/^write(ln)?$/]", message: "document.write renders raw HTML." },
  { selector: "CallExpression[callee.name='eval']", message: "eval executes text." },
  { selector: "NewExpression[callee.name='Function']", message: "new Function executes text." },
  { selector: "CallExpression[callee.name='Function']", message: "Function() executes text." },
  { selector: "CallExpression[callee.property.name='createContextualFragment']", message: "createContextualFragment renders raw HTML." },
  { selector: "CallExpression[callee.property.name='parseFromString']", message: "DOMParser renders raw HTML." },
];

export default ts.config(
  { ignores: ["dist/", "node_modules/"] },
  js.configs.recommended,
  ...ts.configs.recommended,
  ...svelte.configs.recommended,
  {
    languageOptions: { globals: { ...globals.browser } },
  },
  {
    files: ["**/*.svelte", "**/*.svelte.ts", "**/*.svelte.js"],
    languageOptions: {
      parserOptions: {
        projectService: true,
        extraFileExtensions: [".svelte"],
        parser: ts.parser,
        svelteConfig,
      },
    },
  },
  {
    rules: {
      "svelte/no-at-html-tags": "error",
      "no-eval": "error",
      "no-implied-eval": "error",
      "no-new-func": "error",
      "no-restricted-syntax": ["error", ...forbidden],
      "no-restricted-properties": [
        "error",
        { property: "innerHTML", message: "renders raw HTML" },
        { property: "outerHTML", message: "renders raw HTML" },
        { property: "insertAdjacentHTML", message: "renders raw HTML" },
        { object: "document", property: "write", message: "renders raw HTML" },
        { object: "document", property: "writeln", message: "renders raw HTML" },
      ],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
);
