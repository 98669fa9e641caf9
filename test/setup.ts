// bun test preload: make sure the native library exists and is current (build-native.sh is a
// no-op in well under a second when its cache key is unchanged; a cold build shows progress).
import { setDefaultTimeout } from "bun:test";
import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";

const root = join(import.meta.dir, "..");
if (!process.env.LLM_LIB_PATH) {
  const r = spawnSync("bash", [join(root, "build-native.sh")], { stdio: ["ignore", "inherit", "inherit"] });
  if (r.status !== 0) throw new Error(`build-native.sh failed with status ${r.status}`);
  // The parity tests need llama-server (minutes on a cold cache): build it at low priority while
  // the other tests run. build-native.sh holds a lock, so the parity test simply waits for it.
  spawn("nice", ["-n", "10", "bash", join(root, "build-native.sh"), "--tools", "llama-server"], { stdio: "ignore", detached: true }).unref();
}

// Integration tests run the real engine on 2 cores; a cold native build happens before any test.
setDefaultTimeout(120_000);
