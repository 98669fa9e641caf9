// bun test preload: make sure the native library exists and is current (build-native.sh is a
// no-op in well under a second when its cache key is unchanged; a cold build shows progress).
import { spawnSync } from "node:child_process";
import { join } from "node:path";

const root = join(import.meta.dir, "..");
if (!process.env.LLM_LIB_PATH) {
  const r = spawnSync("bash", [join(root, "build-native.sh")], { stdio: ["ignore", "inherit", "inherit"] });
  if (r.status !== 0) throw new Error(`build-native.sh failed with status ${r.status}`);
}
