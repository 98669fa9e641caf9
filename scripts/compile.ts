// `bun run compile`: one executable with the server, the engine worker and the native library inside.
import { spawnSync } from "node:child_process";
import { join } from "node:path";

const root = join(import.meta.dir, "..");
const out = process.argv[2] ?? join(root, "dist/bun-llm-server");
const run = (cmd: string, args: string[]) => {
  const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit" });
  if (r.status !== 0) process.exit(r.status ?? 1);
};
run("bash", ["build-native.sh"]);
run("bun", ["build", "--compile", "src/bin/compiled-main.ts", "src/engine/worker.ts", "--outfile", out]);
console.log(`[compile] wrote ${out}`);
