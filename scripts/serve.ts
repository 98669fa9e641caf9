// `bun run server`: builds what is missing (native library, default model), then serves the API.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { runServer } from "../src/server.ts";

if (!process.env.LLM_LIB_PATH) {
  // A no-op in well under a second once built; the first run compiles llama.cpp (a few minutes).
  const r = spawnSync("bash", [join(import.meta.dir, "../build-native.sh")], { stdio: ["ignore", "inherit", "inherit"] });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

await runServer();
