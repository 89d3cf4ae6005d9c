import { svelte } from "@sveltejs/vite-plugin-svelte";
import { svelteTesting } from "@testing-library/svelte/vite";
import { defineConfig } from "vitest/config";

// Tauri serves ui/dist; the dev server is only used by `tauri dev`.
export default defineConfig(({ mode }) => ({
  plugins: [
    // Tests compile components as production does: dev-mode snippet wrappers write to Function.prototype
    // members, which the app freezes at start-up (see main.ts and App.frozen.test.ts).
    svelte(mode === "test" ? { compilerOptions: { dev: false } } : {}),
    svelteTesting(),
  ],
  clearScreen: false,
  server: { port: 1420, strictPort: true },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    // No inline module-preload polyfill: script-src 'self' forbids inline scripts.
    modulePreload: { polyfill: false },
    sourcemap: false,
  },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.ts"],
    setupFiles: ["src/test-setup.ts"],
    pool: "threads",
    maxWorkers: 2,
  },
}));
