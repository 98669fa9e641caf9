// Every setting the server reads is documented in .env.example (as NAME=… or, for those left unset,
// "# NAME=…").
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";

test("every environment variable config.ts and session-settings.ts read has its line in .env.example", () => {
  const root = join(import.meta.dir, "..");
  const read = ["src/config.ts", "src/session-settings.ts"].map((f) => readFileSync(join(root, f), "utf8")).join("\n");
  const names = new Set([...read.matchAll(/env(?:\.|, ")([A-Z][A-Z0-9_]+)/g)].map((m) => m[1]!));
  expect(names.size).toBeGreaterThan(50); // the pattern still finds them
  const documented = readFileSync(join(root, ".env.example"), "utf8");
  const missing = [...names].filter((n) => !new RegExp(`^(# ?)?${n}=`, "m").test(documented));
  expect(missing).toEqual([]);
});
